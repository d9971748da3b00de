"""Confirming a face that BlazeFace is unsure of: MediaPipe's face-landmark model and a second look.

BlazeFace's fall-back passes (tiles, the full-range model) also fire on things that are not faces
(letters of a title card at scores 0.50-0.71, DESIGN.md "Offline and hardware facts"), while small
real faces found the same way score 0.51-0.94, so no score threshold separates them. MediaPipe's
own face pipeline answers this with its second stage: the face-landmark network
(`face_landmark.tflite`, in the mediapipe 0.10.21 wheel beside the BlazeFace files) runs on the
detection's region and returns, with its 468 landmarks, a *face presence* score that MediaPipe
thresholds to drop regions that hold no face; while tracking, it runs again on the region its own
landmarks give. `FaceCheck.accepts` asks for all of it:

1. presence >= PRESENCE_THRESHOLD on the detection's region (the box enlarged 1.5x, squared, turned
   upright by the line through the eyes: MediaPipe's `face_detection_front_detection_to_roi`,
   192 x 192, values in [0, 1]);
2. presence >= PRESENCE_THRESHOLD again on the region of those landmarks (eye corners level);
3. the BlazeFace model that found the face finds it again (score >= REDETECT_THRESHOLD, boxes
   overlapping) on a crop REDETECT_ZOOM x the box, centred on it — the scale the model works best at.

`engine.faces.detector.FaceFinder.search` confirms every fall-back detection, and whole-frame
detections scoring below CONFIRM_BELOW (3.8 % of the no-face tuning frames had one, at 0.50-0.72,
while 95 % of real whole-frame faces score >= 0.68 and most >= 0.95).

Chosen by measurement (`bench/bench_face_confirm.py --select`, docs/BENCHMARKS.md) on the tune half
of the frozen corpora, against agreement of both BlazeFace models, the geometry of BlazeFace's six
keypoints, re-detection alone and the presence score alone: presence alone let 9.0 % of no-face
frames through (a rocket's mission patch, a cat's eye, the letter O score >= 0.97), geometry 40 %,
the other model's agreement lost 5 % of real faces; the three together accepted 0 of 600 no-face
frames and kept 96.9 % of the real and 99.5 % of the synthetic faces the old detector found.

The landmark network runs through OpenCV's TFLite importer (`cv2.dnn.readNetFromTFLite`, one
thread): MediaPipe's Tasks `FaceLandmarker` needs a `.task` bundle and runs its own detector first,
while the wheel ships the bare `.tflite` and this check needs its presence score on our region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .detector import Detection

INPUT_SIZE = 192           # the landmark model's input (pixels)
ROI_SCALE = 1.5            # region side / detection box side (MediaPipe's face_detection_front_detection_to_roi)
PRESENCE_THRESHOLD = 0.5   # MediaPipe's own; the tune half showed no gain from another (docs/BENCHMARKS.md)
REDETECT_ZOOM = 2.5        # crop side / box side for the second look
REDETECT_THRESHOLD = 0.65  # tune half: 95 % of real fall-back faces >= 0.72, 90 % of non-faces < 0.66
CONFIRM_BELOW = 0.75       # whole-frame detections scoring less are confirmed too
EYE_CORNERS = (33, 263)    # landmark indices of the outer eye corners (as seen: left, right)


def region(det: Detection) -> np.ndarray:
    """The 2x3 affine map from frame pixels to the landmark model's input for `det`: its box
    enlarged ROI_SCALE x and squared about the centre, rotated so the eyes are level."""
    import cv2

    cx, cy = det.x + det.w / 2, det.y + det.h / 2
    half = max(det.w, det.h) * ROI_SCALE / 2
    angle = 0.0
    if len(det.keypoints) >= 2:
        (x0, y0), (x1, y1) = det.keypoints[0], det.keypoints[1]  # the eyes, as seen: left, right
        angle = float(np.arctan2(y1 - y0, x1 - x0))
    c, s = np.cos(angle), np.sin(angle)
    corners = [(-half, -half), (half, -half), (-half, half)]  # top-left, top-right, bottom-left
    src = np.array([[cx + u * c - v * s, cy + u * s + v * c] for u, v in corners], np.float32)
    dst = np.array([[0, 0], [INPUT_SIZE, 0], [0, INPUT_SIZE]], np.float32)
    return cv2.getAffineTransform(src, dst)


def square_around(rgb: np.ndarray, det: Detection, zoom: float = REDETECT_ZOOM) -> tuple[np.ndarray, int, int]:
    """A square crop `zoom` x the box's long side centred on it (edge pixels repeated outside the
    frame) and its top-left corner in the frame."""
    import cv2

    side = max(2, int(round(max(det.w, det.h) * zoom)))
    x0, y0 = int(round(det.x + det.w / 2 - side / 2)), int(round(det.y + det.h / 2 - side / 2))
    M = np.float32([[1, 0, -x0], [0, 1, -y0]])
    return cv2.warpAffine(rgb, M, (side, side), borderMode=cv2.BORDER_REPLICATE), x0, y0


def iou(a: Detection, b: Detection) -> float:
    iw = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    ih = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = iw * ih
    return inter / (a.area + b.area - inter) if inter > 0 else 0.0


@dataclass(frozen=True)
class Evidence:
    """What the check saw for one detection (the parts it computed; the rest stay None)."""

    presence: float
    presence_track: float | None = None
    redetected: float | None = None

    @property
    def confirmed(self) -> bool:
        return (self.presence >= PRESENCE_THRESHOLD and self.presence_track is not None
                and self.presence_track >= PRESENCE_THRESHOLD and self.redetected is not None
                and self.redetected >= REDETECT_THRESHOLD)


class FaceCheck:
    """The confirmation of one worker. `detect(model, rgb)` is the finder's BlazeFace call (its
    detections in `rgb`'s pixels), used for the second look."""

    def __init__(self, model_path: str, detect: Callable[[str, np.ndarray], list[Detection]]):
        import cv2

        self.net = cv2.dnn.readNetFromTFLite(model_path)
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self._outputs = list(self.net.getUnconnectedOutLayersNames())
        self.detect = detect

    def patch(self, rgb: np.ndarray, det: Detection) -> np.ndarray:
        """The landmark model's input for `det`: INPUT_SIZE x INPUT_SIZE RGB, uint8."""
        import cv2

        return cv2.warpAffine(rgb, region(det), (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    def landmarks(self, patch: np.ndarray) -> tuple[np.ndarray, float]:
        """(468 x 3 landmarks in patch pixels, face-presence score = sigmoid of the model's logit)."""
        x = patch.astype(np.float32) / 255.0
        self.net.setInput(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
        outs = self.net.forward(self._outputs)
        flag = next(o for o in outs if o.size == 1)
        marks = next(o for o in outs if o.size != 1).reshape(-1, 3)
        return marks, float(1.0 / (1.0 + np.exp(-float(flag.ravel()[0]))))

    def tracked(self, det: Detection, marks: np.ndarray) -> Detection:
        """The region the landmarks give (their bounding box, eye corners for the angle), in frame pixels."""
        inv = np.linalg.inv(np.vstack([region(det), [0, 0, 1]]))[:2]
        pts = marks[:, :2] @ inv[:, :2].T + inv[:, 2]
        (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
        eyes = tuple(tuple(float(v) for v in pts[i]) for i in EYE_CORNERS)
        return Detection(float(x0), float(y0), float(x1 - x0), float(y1 - y0), 0.0, "landmarks", eyes)

    def redetect(self, rgb: np.ndarray, det: Detection) -> float:
        """The best score of the detection's own model on a crop around it, among boxes overlapping it."""
        crop, x0, y0 = square_around(rgb, det)
        model = det.detector.split("/")[0]
        found = [Detection(d.x + x0, d.y + y0, d.w, d.h, d.score, d.detector) for d in self.detect(model, crop)]
        return max((d.score for d in found if iou(d, det) > 0.3), default=0.0)

    def evidence(self, rgb: np.ndarray, det: Detection, full: bool = False) -> Evidence:
        """The check's steps in order, stopping at the first that fails (all of them with `full`)."""
        marks, presence = self.landmarks(self.patch(rgb, det))
        if presence < PRESENCE_THRESHOLD and not full:
            return Evidence(presence)
        again = self.tracked(det, marks)
        track = self.landmarks(self.patch(rgb, again))[1] if again.w > 2 and again.h > 2 else 0.0
        if track < PRESENCE_THRESHOLD and not full:
            return Evidence(presence, track)
        return Evidence(presence, track, self.redetect(rgb, det))

    def accepts(self, rgb: np.ndarray, det: Detection) -> bool:
        return self.evidence(rgb, det).confirmed
