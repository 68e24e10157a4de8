"""Faces: MTCNN detection with five landmarks, aligned and context crops."""
