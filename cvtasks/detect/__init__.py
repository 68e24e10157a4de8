"""detect: torchvision detectors (boxes, labels, scores) in original-image pixels."""
