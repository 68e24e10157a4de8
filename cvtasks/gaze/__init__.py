"""Gaze estimation: L2CS-Net on face crops (from pose keypoints or a faces file)."""
