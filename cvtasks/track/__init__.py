"""track: trackers over detections, line/zone analytics, MOT files and evaluation."""
