"""segment: semantic (deeplabv3, fcn, lraspp) and instance (maskrcnn) segmentation."""
