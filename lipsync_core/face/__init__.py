"""Face analysis: everything the generator and the compositor need to know about the faces of a shot.

    tracker.py   track_plate(path) -> Track; track_frames(images) -> [FaceTrack]; FaceMeshDetector
    track.py     Track / FaceTrack: landmarks per face and frame, presence, .npz cache;
                 FaceTrack.alignment(i, size) and FaceTrack.mask(i, shape, M, overrides)
    geometry.py  the crop geometry (alignment_matrix, warp_to_crop, warp_from_crop, invert,
                 transform_points), head_pose / euler_angles, face_shape, the canonical face
    mask.py      the pose-aware lower-face mask (lower_face_mask, mask_polygon, shot_mask)
    smoothing.py One Euro filter and the jitter measure
    landmarks.py named indices into the 478-point mesh
    analyze.py   the analyze operation and `lipsync analyze`
    make_canonical.py  builds resources/face/canonical_face.npy (run once)
"""
