"""Named indices into MediaPipe's 478-point face mesh (468 mesh points + 10 iris points).

"Right"/"left" are the subject's own: the subject's right eye appears on the image's left.
"""

import numpy as np

COUNT = 478

RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (263, 362)
MOUTH_CORNERS = (61, 291)  # image left (subject's right), image right
NOSE_TIP = 1
UPPER_LIP_TOP = 0
CHIN = 152
FOREHEAD = 10

# Outline of the face, closed, clockwise in the image starting at the top of the forehead.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)

# Lip contours (outer and inner): what the generator redraws.
LIPS = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191,
)

# The lower face outline from ear to ear under the chin: it moves with the jaw.
JAW = (361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132)

# The middle of the inner lip contour, top and bottom: their distance is the mouth opening.
INNER_LIP_TOP, INNER_LIP_BOTTOM = 13, 14

# Eye contours and irises: the mask must never reach these.
EYES = (
    33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
    263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466,
    468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
)

# Points that move with the skull but not with speech or expression: forehead, temples, eye corners,
# nose bridge and tip. Head pose is fitted on these alone, so a talking mouth never moves the pose
# (nor the mask or crop derived from it). Brows, lips, jaw and cheeks are left out on purpose.
RIGID = (
    10, 151, 9, 8, 109, 67, 103, 338, 297, 332,  # forehead
    54, 21, 162, 127, 284, 251, 389, 356,  # temples
    33, 133, 263, 362,  # eye corners
    168, 6, 197, 195, 5, 4, 1,  # nose bridge and tip
)


def face_size(landmarks: np.ndarray) -> np.ndarray:
    """Forehead-to-chin distance in the landmarks' units (pixels for a track), for (..., 478, 2|3):
    the scale that tolerances and speeds are measured in, whatever the resolution."""
    return np.linalg.norm(landmarks[..., FOREHEAD, :2] - landmarks[..., CHIN, :2], axis=-1)


def _eye_distance(landmarks: np.ndarray) -> np.ndarray:
    return np.maximum(np.linalg.norm(landmarks[..., RIGHT_EYE_CORNERS[0], :2] - landmarks[..., LEFT_EYE_CORNERS[0], :2], axis=-1), 1e-6)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """(..., 478, 2+) landmarks -> inner-lip gap, relative to the face's inter-ocular distance."""
    return np.linalg.norm(landmarks[..., INNER_LIP_TOP, :2] - landmarks[..., INNER_LIP_BOTTOM, :2], axis=-1) / _eye_distance(landmarks)


def mouth_width(landmarks: np.ndarray) -> np.ndarray:
    """(..., 478, 2+) landmarks -> corner-to-corner width, relative to the inter-ocular distance."""
    left, right = MOUTH_CORNERS
    return np.linalg.norm(landmarks[..., left, :2] - landmarks[..., right, :2], axis=-1) / _eye_distance(landmarks)
