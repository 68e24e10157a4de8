"""The task registry: the one place that names every task family, each by "module:attr" strings.

Kept free of torch and of the families' code: a family's config module is imported when its
command is built, its predictor only when the task runs. Adding a family is one entry here.
"""

from __future__ import annotations

from cvtasks.errors import UsageError
from cvtasks.tasks.spec import TaskSpec

__all__ = ["TASKS", "TaskSpec", "get_task"]


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            name="classify",
            help="Classify images or video frames with a torchvision classifier (top-k labels).",
            config="cvtasks.classify.config:ClassifyConfig",
            predictor="cvtasks.classify.predictor:ClassifyPredictor",
            models="cvtasks.classify.predictor:classification_models",
            stage="cvtasks.classify.aggregate:make_aggregate_stage",
            exporter="cvtasks.classify.export:export_plan",
        ),
        TaskSpec(
            name="detect",
            help="Detect objects (boxes, labels, scores) with a torchvision detector.",
            config="cvtasks.detect.config:DetectConfig",
            predictor="cvtasks.detect.predictor:DetectPredictor",
            models="cvtasks.detect.predictor:detection_models",
            exporter="cvtasks.detect.export:export_plan",
        ),
        TaskSpec(
            name="segment",
            help="Segment images: per-pixel classes (deeplabv3/fcn/lraspp) or instance masks "
            "(maskrcnn).",
            config="cvtasks.segment.config:SegmentConfig",
            predictor="cvtasks.segment.predictor:make_segment_predictor",
            models="cvtasks.segment.predictor:segmentation_models",
            exporter="cvtasks.segment.export:export_plan",
        ),
        TaskSpec(
            name="pose",
            help="Estimate human pose: person boxes and 17 COCO keypoints (keypointrcnn).",
            config="cvtasks.pose.config:PoseConfig",
            predictor="cvtasks.pose.predictor:PosePredictor",
            models="cvtasks.pose.predictor:pose_models",
            exporter="cvtasks.detect.export:export_plan",
        ),
        TaskSpec(
            name="faces",
            help="Find faces (MTCNN): boxes, scores and five landmarks; aligned and context "
            "crops (--save-crops); one id per face through a video (--track).",
            config="cvtasks.faces.config:FacesConfig",
            predictor="cvtasks.faces.predictor:FacesPredictor",
            models="cvtasks.faces.catalog:face_models",
            catalog="cvtasks.faces.catalog:FACES_CATALOG",
            stage="cvtasks.faces.track:make_face_track_stage",
        ),
        TaskSpec(
            name="gaze",
            help="Where each face looks (L2CS-Net on face crops from pose keypoints or a faces "
            "file): yaw, pitch and a 3-D gaze vector per face.",
            config="cvtasks.gaze.config:GazeConfig",
            predictor="cvtasks.gaze.predictor:GazePredictor",
            models="cvtasks.gaze.models:gaze_models",
            catalog="cvtasks.gaze.catalog:GAZE_CATALOG",
            stage="cvtasks.faces.track:make_face_track_stage",
        ),
        TaskSpec(
            name="explain",
            help="Explain a classifier's decision, a detection or a segmented region: occlusion, "
            "saliency, smoothgrad, integrated-gradients, deconvnet, guided-backprop, gradcam, "
            "guided-gradcam; or look inside a CNN (filters, feature-maps, top-patches, embed, "
            "maximize).",
            config="cvtasks.explain.config:ExplainConfig",
            predictor="cvtasks.explain.dispatch:make_explain_predictor",
            models="cvtasks.explain.objects:explainable_models",
            positional=("method",),
            runner="cvtasks.explain.dispatch:run_explain",
        ),
        TaskSpec(
            name="track",
            help="Track objects through videos, image sequences and live streams; count line "
            "crossings and zone occupancy (ByteTrack, OC-SORT, BoT-SORT, SORT).",
            config="cvtasks.track.config:TrackConfig",
            predictor="cvtasks.track.predictors:make_track_predictor",
            models="cvtasks.track.models:track_models",
            expand="cvtasks.io.sources:expand_sequences",
            stage="cvtasks.track.resume:make_track_stage",
        ),
        TaskSpec(
            name="train",
            help="Train a classifier on your own labelled folders (fine-tune a torchvision "
            "model); the run folder is a weights spec (-w runs/NAME).",
            config="cvtasks.classify.train.config:TrainConfig",
            predictor="cvtasks.classify.predictor:ClassifyPredictor",
            models="cvtasks.classify.predictor:classification_models",
            runner="cvtasks.classify.train.runner:run_train",
        ),
        TaskSpec(
            name="eval",
            help="Measure a model: `eval classify DATA` (top-1/top-5, per-class precision, "
            "recall, F1, confusion, calibration; for two classes ROC AUC, EER, APCER, BPCER, "
            "ACER), `eval detect|segment|pose IMAGES --gt COCO.json` (COCO AP) or `eval explain "
            "METHOD IMAGES --gt human.json` (explanations against people, and faithfulness).",
            config="cvtasks.classify.config:EvalConfig",
            predictor="cvtasks.classify.predictor:ClassifyPredictor",
            models="cvtasks.classify.predictor:classification_models",
            positional=("kind",),
            expand="cvtasks.classify.eval:expand_eval_inputs",
            stage="cvtasks.classify.eval:make_eval_stage",
        ),
        TaskSpec(
            name="eval-detect",
            help="Measure a detector against COCO ground truth (or score saved predictions): "
            "COCOeval's AP/AR, AP per class, precision and recall at --conf, precision-recall "
            "curves and a confusion matrix with background.",
            config="cvtasks.detect.eval_config:DetectEvalConfig",
            predictor="cvtasks.detect.eval:make_eval_detector",
            models="cvtasks.detect.predictor:detection_models",
            runner="cvtasks.detect.eval:run_detect_eval",
            stage="cvtasks.detect.eval:make_detect_eval_stage",
            parent="eval",
            kind="detect",
        ),
        TaskSpec(
            name="eval-segment",
            help="Measure instance masks against COCO ground truth (COCOeval segm), like eval "
            "detect.",
            config="cvtasks.detect.eval_config:SegmentEvalConfig",
            predictor="cvtasks.detect.eval:make_eval_detector",
            models="cvtasks.segment.predictor:segmentation_models",
            runner="cvtasks.detect.eval:run_detect_eval",
            stage="cvtasks.detect.eval:make_detect_eval_stage",
            parent="eval",
            kind="segment",
        ),
        TaskSpec(
            name="eval-pose",
            help="Measure keypoints against COCO person keypoints (COCOeval keypoints: OKS with "
            "the standard sigmas), like eval detect.",
            config="cvtasks.detect.eval_config:PoseEvalConfig",
            predictor="cvtasks.detect.eval:make_eval_detector",
            models="cvtasks.pose.predictor:pose_models",
            runner="cvtasks.detect.eval:run_detect_eval",
            stage="cvtasks.detect.eval:make_detect_eval_stage",
            parent="eval",
            kind="pose",
        ),
        TaskSpec(
            name="eval-explain",
            help="Measure explanations: against where people say the evidence is (COCO boxes or "
            "masks: pointing game, energy pointing game, top-k IoU) or looked (saliency maps: "
            "CC, NSS, AUC-Judd), for faithfulness (deletion and insertion AUC), each beside a "
            "random and a centre-prior map; and people's labels against the model's.",
            config="cvtasks.explain.eval_config:ExplainEvalConfig",
            predictor="cvtasks.explain.eval_predictor:make_explain_eval_predictor",
            models="cvtasks.explain.objects:explainable_models",
            positional=("method",),
            runner="cvtasks.explain.eval:run_explain_eval",
            stage="cvtasks.explain.eval:make_explain_eval_stage",
            parent="eval",
            kind="explain",
        ),
        TaskSpec(
            name="export",
            help="Export a model for another runtime (ONNX, OpenVINO IR, torch.export .pt2, "
            "TorchScript) with its preprocessing and class names inside, checked against "
            "PyTorch; optionally int8. Run it with --backend onnxruntime|openvino -w FILE.",
            config="cvtasks.export.config:ExportConfig",
            predictor="cvtasks.export.runner:no_predictor",
            models="cvtasks.export.runner:exportable_models",
            runner="cvtasks.export.runner:run_export",
        ),
        TaskSpec(
            name="depth",
            help="Estimate depth from one image (Depth Anything V2, DPT, ZoeDepth; transformers).",
            config="cvtasks.depth.config:DepthConfig",
            predictor="cvtasks.depth.predictor:DepthPredictor",
            models="cvtasks.depth.models:depth_model_names",
            model_source="transformers",
            catalog="cvtasks.depth.catalog:DEPTH_CATALOG",
            exporter="cvtasks.depth.export:export_plan",
        ),
    ]
}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name; unknown names are usage errors with a suggestion."""
    from cvtasks.config import suggest

    try:
        return TASKS[name]
    except KeyError:
        raise UsageError(
            f"unknown task '{name}'; tasks: {', '.join(TASKS)}" + suggest(name, TASKS)
        ) from None
