"""Face tracking, crop geometry, head pose and the pose-aware mask, on real clips from ../shared/data."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pytest

from lipsync_core.face import geometry
from lipsync_core.face.geometry import (
    alignment_matrix, canonical_face, euler_angles, head_pose, invert, transform_points, warp_from_crop,
    warp_to_crop,
)
from lipsync_core.face.landmarks import CHIN, EYES, FACE_OVAL, LIPS, MOUTH_CORNERS, face_size
from lipsync_core.face.mask import lower_face_mask, mask_polygon
from lipsync_core.face.smoothing import jitter, one_euro
from lipsync_core.face.track import Track
from lipsync_core.face.tracker import track_frames, track_plate
from lipsync_core.media.frames import open_plate

# Clips with head turns, several sources and sizes; subranges keep the suite quick.
POSE_CLIP = "av/AP0827_test_set_sample1.mp4"  # yaw -22..+23 degrees
CLIPS = {
    POSE_CLIP: None,
    "av/tanshuai0219_test_data_pose_source2.mp4": (0, 99),
    "av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg": None,
    "av/FuxiVirtualH_samples_source_video_video_feifeili_clip1.mp4": (0, 99),
}


@lru_cache(maxsize=None)
def _track(path: str, frames: tuple[int, int] | None = None, smooth: bool = True) -> Track:
    return track_plate(path, frames=frames, smooth=smooth)


def _frames(path, frames=None) -> list[np.ndarray]:
    with open_plate(path, frames=frames) as plate:
        return [f.image for f in plate]


@pytest.fixture(scope="module")
def tracks(shared_data):
    return {name: _track(str(shared_data / name), frames) for name, frames in CLIPS.items()}


# ------------------------------------------------------------------------------------ tracking


def test_every_frame_of_av_clips_has_one_face(tracks):
    for name, track in tracks.items():
        main = track.face(0)
        assert main.present.all(), f"{name}: no face on frames {track.frames[~main.present].tolist()}"
        assert main.landmarks.shape == (len(track), 478, 3) and main.landmarks.dtype == np.float32
        # Landmarks are plate pixels: the face lies inside the frame.
        xy = main.landmarks[..., :2]
        assert xy[..., 0].min() > -1 and xy[..., 0].max() < track.width
        assert xy[..., 1].min() > -1 and xy[..., 1].max() < track.height


def test_hard_av_clip_is_mostly_found_and_never_crashes(shared_data):
    track = _track(str(shared_data / "av/smeetrs_video_demo_00009.mp4"))
    assert track.face(0).present.mean() > 0.85


@pytest.mark.slow
def test_first_second_of_every_av_clip_has_a_face(shared_data, manifest):
    for row in manifest:
        if row["kind"] != "av" or not row["file"].startswith("av/") or row["file"].endswith("00009.mp4"):
            continue
        with open_plate(shared_data / row["file"]) as plate:
            last = min(plate.info.first + 24, plate.info.last)
        track = track_plate(shared_data / row["file"], frames=(plate.info.first, last), smooth=False)
        assert track.faces and track.face(0).present.all(), row["file"]


def test_small_faces_are_found_with_the_full_range_detector(shared_data):
    # A full-body shot: the face is ~5% of the frame height, under the mesh detector's reach.
    track = track_plate(shared_data / "assets/KwaiVGI_assets_examples_source_s13.mp4", frames=(0, 24))
    main = track.face(0)
    assert main.present.all()
    assert np.median(face_size(main.landmarks)) < 0.1 * track.height


def test_frames_without_a_face_are_marked_not_crashed_on(shared_data):
    images = _frames(shared_data / "av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg", (0, 19))
    images[5] = np.zeros_like(images[5])  # a black frame
    height, width = images[0].shape[:2]
    images[12] = np.roll(images[12], width // 2 - 10, axis=1)  # the face half out of frame... and wrapped
    images[12][:, : width // 2 - 10] = 0
    faces = track_frames(images, fps=25.0)
    main = faces[0]
    assert not main.present[5] and np.isnan(main.landmarks[5]).all()
    assert main.present[[0, 4, 6, 19]].all()
    assert not main.partial[[0, 4, 6, 19]].any()
    assert not main.present[12] or main.partial[12]


def test_two_people_keep_their_ids_and_the_larger_is_face_0(shared_data):
    a = _frames(shared_data / "av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg", (0, 39))
    b = _frames(shared_data / "av/rizkiarm_evaluation_samples_GRID_lbbc2a.mpg", (0, 39))
    height, width = a[0].shape[:2]
    small = [cv2.resize(image, (width * 2 // 3, height * 2 // 3), interpolation=cv2.INTER_AREA) for image in b]
    frames = []
    for big, little in zip(a, small):
        canvas = np.zeros((height, width * 2, 3), np.uint8)
        canvas[:, :width] = big
        canvas[: little.shape[0], width : width + little.shape[1]] = little
        frames.append(canvas)
    faces = track_frames(frames, fps=25.0)
    assert len(faces) == 2
    assert faces[0].present.all() and faces[1].present.all()
    # Face 0 is the large person on the left on every frame, face 1 the small one on the right.
    assert (faces[0].landmarks[:, :, 0].mean(axis=1) < width).all()
    assert (faces[1].landmarks[:, :, 0].mean(axis=1) > width).all()


ASSETS_ONE_FACE = [
    "KwaiVGI_assets_examples_source_s13.mp4", "KwaiVGI_assets_examples_source_s18.mp4",
    "KwaiVGI_assets_examples_source_s20.mp4", "KwaiVGI_assets_examples_source_s29.mp4",
    "KwaiVGI_assets_examples_source_s32.mp4", "bytedance_assets_demo1_video.mp4", "bytedance_assets_demo2_video.mp4",
    "bytedance_assets_demo3_video.mp4", "facebookrese_av_enhancement_test_videos_noisy_restaurant.mp4",
]


@pytest.mark.parametrize("name", ASSETS_ONE_FACE)
def test_the_face_in_each_asset_clip_is_found(shared_data, name):
    # Wide, vertical, full-body and small-face shots with one person each (checked by eye).
    track = track_plate(shared_data / "assets" / name, frames=(0, 4))
    assert track.faces and track.face(0).present.all()


def test_every_face_in_the_audience_shot_is_found(shared_data):
    # Hamilton clip, frames 245-254: four people side by side, small, turned, dimly lit (checked by eye).
    track = _track(str(shared_data / "assets/ageitgey_examples_short_hamilton_clip.mp4"), (215, 274))
    present = np.array([f.present for f in track.faces])
    window = (track.frames >= 245) & (track.frames <= 254)
    assert (present[:, window].sum(axis=0) >= 4).all()


def test_multi_face_shot_keeps_ids_without_swaps(shared_data):
    # The audience shot of the Hamilton clip: several people side by side, none moving much.
    track = _track(str(shared_data / "assets/ageitgey_examples_short_hamilton_clip.mp4"), (215, 274))
    seen = [f for f in track.faces if f.present.sum() >= 10]
    assert len(seen) >= 3
    for face in seen:
        centres = face.landmarks[face.present][:, :, :2].mean(axis=1)
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
        # An id that jumped to another person would move by a face width or more in one frame.
        assert steps.max() < 0.5 * face.size()


def test_track_saves_and_loads(tmp_path, tracks):
    track = tracks["av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg"]
    track.save(tmp_path / "t.npz")
    loaded = Track.load(tmp_path / "t.npz")
    assert loaded.plate == track.plate and (loaded.width, loaded.height) == (track.width, track.height)
    np.testing.assert_array_equal(loaded.frames, track.frames)
    np.testing.assert_array_equal(loaded.face(0).landmarks, track.face(0).landmarks)
    np.testing.assert_array_equal(loaded.face(0).present, track.face(0).present)
    np.testing.assert_array_equal(loaded.face(0).shape, track.face(0).shape)
    assert loaded.landmarks(int(track.frames[3])).shape == (478, 3)


def test_smoothing_removes_jitter_without_lagging_head_turns(shared_data):
    for name in (POSE_CLIP, "av/rizkiarm_evaluation_samples_GRID_bbaf2n.mpg"):
        raw = _track(str(shared_data / name), CLIPS[name], smooth=False)
        landmarks = raw.face(0).landmarks
        smoothed = one_euro(landmarks, raw.times)
        before, after = jitter(landmarks), jitter(smoothed)
        # Lag: how far the smoothed face trails on the fastest 10% of frames (the rigid points).
        centre = landmarks[:, :, :2].mean(axis=1)
        speed = np.linalg.norm(np.gradient(centre, axis=0), axis=1)
        fast = speed >= np.quantile(speed, 0.9)
        lag = np.linalg.norm(smoothed[fast, :, :2].mean(axis=1) - centre[fast], axis=1) / face_size(landmarks[fast])
        print(f"{name}: jitter {before:.3f} -> {after:.3f} % of face height; lag on fast frames {lag.mean() * 100:.2f} %")
        assert after < 0.6 * before
        assert lag.mean() < 0.01


# ------------------------------------------------------------------------------------ geometry


def test_aligned_crop_holds_the_whole_face_with_the_mouth_low(tracks):
    size = 256
    for name, track in tracks.items():
        face = track.face(0)
        for i in range(0, len(track), 10):
            landmarks, M = face.landmarks[i], face.alignment(i, size)
            oval = transform_points(landmarks[list(FACE_OVAL)], M)
            chin = transform_points(landmarks[CHIN], M)
            mouth = transform_points(landmarks[list(MOUTH_CORNERS)], M).mean(axis=0)
            assert oval.min() > 0.02 * size and oval.max() < 0.98 * size, name
            assert chin[1] < 0.92 * size, f"{name}: chin too near the crop's bottom"
            # Room for a jaw that drops further than in the source: the mask stays inside the crop.
            assert mask_polygon(landmarks, M, face=face.shape)[:, 1].max() < size, name
            assert 0.55 * size < mouth[1] < 0.8 * size, name
            assert abs(mouth[0] - size / 2) < 0.1 * size, name


def _open_mouth(landmarks: np.ndarray) -> np.ndarray:
    """The same head with the jaw dropped by 10% of the face height (mouth corners, lips, chin)."""
    opened = landmarks.copy()
    jaw = landmarks[:, 1] > landmarks[list(MOUTH_CORNERS), 1].mean() - 0.02 * face_size(landmarks)
    opened[jaw, 1] += 0.1 * face_size(landmarks)
    return opened


def test_crop_does_not_zoom_with_the_mouth(tracks):
    face = tracks[POSE_CLIP].face(0)
    landmarks = face.landmarks[10]
    for shape in (None, face.shape):
        np.testing.assert_allclose(
            alignment_matrix(_open_mouth(landmarks), 128, shape), alignment_matrix(landmarks, 128, shape), atol=1e-9
        )


def test_transform_inverse_and_paste_back(shared_data, tracks):
    image = _frames(shared_data / POSE_CLIP, (0, 0))[0]
    landmarks = tracks[POSE_CLIP].face(0).landmarks[0]
    M = alignment_matrix(landmarks, 128)
    points = landmarks[:, :2]
    np.testing.assert_allclose(transform_points(transform_points(points, M), invert(M)), points, atol=1e-6)
    crop = warp_to_crop(image, M, 128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    back = warp_from_crop(crop, M, image.shape)
    # Inside the face the round trip reproduces the plate, blurred to the crop's resolution.
    inside = lower_face_mask(landmarks, image.shape[:2]) > 0.99
    difference = np.abs(back.astype(float) - cv2.GaussianBlur(image, (0, 0), 1.0 / geometry.scale_of(M) / 2).astype(float))
    assert difference[inside].mean() < 8


def test_downscaled_crop_does_not_alias():
    stripes = np.zeros((800, 800), np.float32)
    stripes[:, ::2] = 1.0  # the finest pattern a plate can hold
    M = np.array([[0.125, 0, 0], [0, 0.125, 0]])
    crop = warp_to_crop(stripes, M, 64)
    assert abs(crop.mean() - 0.5) < 0.02 and crop.std() < 0.02


def test_head_pose_recovers_a_known_pose():
    canonical = canonical_face().astype(np.float64)
    yaw, pitch, roll = np.radians([25.0, -10.0, 8.0])
    rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    R_true = rz @ ry @ rx
    observed = 300.0 * canonical @ R_true.T + np.array([640.0, 360.0, 5.0])
    R, t, s = head_pose(observed)
    np.testing.assert_allclose(R, R_true, atol=1e-6)
    assert s == pytest.approx(300.0)
    assert euler_angles(R) == pytest.approx((25.0, -10.0, 8.0))
    # Sign conventions in image terms: yaw > 0 moves the nose tip to the image's left.
    assert observed[1, 0] < 640.0 + 300.0 * canonical[1, 0]


def test_head_pose_fits_real_faces(tracks):
    rigid = [10, 151, 33, 133, 263, 362, 168, 6, 1]
    for name, track in tracks.items():
        for landmarks in track.face(0).landmarks[::15]:
            R, t, s = head_pose(landmarks)
            fitted = s * canonical_face()[rigid] @ R.T + t
            error = np.linalg.norm(fitted[:, :2] - landmarks[rigid, :2], axis=1).mean()
            assert error < 0.03 * face_size(landmarks), name


def test_head_pose_follows_real_head_turns(tracks):
    track = tracks[POSE_CLIP]
    landmarks = track.face(0).landmarks
    yaws = np.array([euler_angles(head_pose(lm)[0])[0] for lm in landmarks])
    # The nose tip's offset from the eyes' midpoint (image x) is a model-free yaw proxy.
    eyes_mid = (landmarks[:, 33, 0] + landmarks[:, 263, 0]) / 2
    proxy = (landmarks[:, 1, 0] - eyes_mid) / face_size(landmarks)
    assert yaws.max() - yaws.min() > 25
    assert np.corrcoef(yaws, -proxy)[0, 1] > 0.9


# ------------------------------------------------------------------------------------ mask


def _value_at(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    xy = np.round(points[:, :2]).astype(int)
    return mask[xy[:, 1], xy[:, 0]]


def test_mask_covers_the_mouth_and_never_the_eyes(tracks):
    for name, track in tracks.items():
        face = track.face(0)
        for i in range(0, len(track), 3):
            landmarks = face.landmarks[i]
            size = face_size(landmarks)
            polygon = mask_polygon(landmarks, face=face.shape).astype(np.float32)
            inside = [cv2.pointPolygonTest(polygon, (float(x), float(y)), True) for x, y in landmarks[list(LIPS), :2]]
            assert min(inside) > 0.03 * size, f"{name} frame {track.frames[i]}: lips near the mask edge"
            mask = face.mask(i, (track.height, track.width))
            assert _value_at(mask, landmarks[list(LIPS)]).min() > 0.9, name
            assert _value_at(mask, landmarks[list(EYES)]).max() == 0.0, name


def test_mask_in_the_crop_matches_the_plate_mask(tracks):
    track = tracks[POSE_CLIP]
    face = track.face(0)
    landmarks, M = face.landmarks[20], face.alignment(20, 128)
    crop_mask = face.mask(20, (128, 128), M)
    plate_mask = face.mask(20, (track.height, track.width))
    resampled = warp_to_crop(plate_mask, M, 128)
    assert np.abs(crop_mask - resampled).mean() < 0.02
    assert _value_at(crop_mask, transform_points(landmarks[list(LIPS)], M)).min() > 0.9


def test_mask_ignores_the_mouth_opening(tracks):
    track = tracks[POSE_CLIP]
    face = track.face(0)
    landmarks = face.landmarks[0]
    M = face.alignment(0, 128)
    for shape_hw, transform in (((track.height, track.width), None), ((128, 128), M)):
        np.testing.assert_array_equal(
            lower_face_mask(_open_mouth(landmarks), shape_hw, transform, face=face.shape),
            lower_face_mask(landmarks, shape_hw, transform, face=face.shape),
        )


def test_mask_follows_head_rotation(tracks):
    track = tracks[POSE_CLIP]
    face = track.face(0)
    landmarks = face.landmarks
    yaws = np.array([euler_angles(head_pose(lm, face.shape)[0])[0] for lm in landmarks])
    left, front, right = landmarks[yaws.argmin()], landmarks[np.abs(yaws).argmin()], landmarks[yaws.argmax()]
    shapes = []
    for lm in (left, front, right):
        polygon = mask_polygon(lm, face=face.shape)
        _, _, s = head_pose(lm, face.shape)
        nose_x = lm[1, 0]
        # The mask's width on each side of the nose, in head-size units.
        shapes.append(((nose_x - polygon[:, 0].min()) / s, (polygon[:, 0].max() - nose_x) / s, cv2.contourArea(polygon.astype(np.float32)) / s**2))
    (l_left, r_left, a_left), (l_front, r_front, a_front), (l_right, r_right, a_right) = shapes
    # Turned one way, the mask is wider on one side of the nose; turned the other way, on the other.
    assert (l_left / r_left - 1) * (l_right / r_right - 1) < 0
    assert abs(l_left / r_left - l_right / r_right) > 0.3
    # Seen turned, the lower face is foreshortened: smaller than seen from the front.
    assert max(a_left, a_right) < a_front
