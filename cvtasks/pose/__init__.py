"""pose: person keypoints (keypointrcnn) and body/head orientation from them."""
