"""`cvtasks export`: a model (with its preprocessing and class names) as an ONNX, OpenVINO,
ExportedProgram or TorchScript file; and the runtimes that run such files (``--backend``)."""
