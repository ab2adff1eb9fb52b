"""Frames from a ``csi://``/``v4l2://`` camera through OpenCV's GStreamer backend.

The pipeline string comes from :func:`sredge.runtime.camera.gstreamer_pipeline` (pure);
this module only opens it, reads BGR frames and closes it. :class:`~sredge.runtime.video_io.VideoReader`
turns those frames into the same upright RGB :class:`~sredge.runtime.video_io.Frame` items it
yields for files and streams.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading

import cv2
import numpy as np

from sredge.errors import InputError
from sredge.runtime.camera import (
    CameraSpec,
    gst_launch_command,
    gstreamer_pipeline,
    missing_elements_message,
    missing_gstreamer_message,
    opencv_has_gstreamer,
    pipeline_elements,
)

log = logging.getLogger(__name__)

_CV_LOG_ERROR = 2  # cv2.utils.logging.LOG_LEVEL_ERROR
OPEN_TIMEOUT_S = 20.0
"""Seconds to wait for a pipeline to start (a CSI sensor takes a second or two)."""


def check_gstreamer(spec: CameraSpec, pipeline: str | None = None) -> None:
    """Fail early, before any model loads, when this machine cannot run the camera's pipeline.

    Args:
        spec: The camera.
        pipeline: The pipeline to check; None: :func:`gstreamer_pipeline` of ``spec``.

    Raises:
        InputError: OpenCV was built without GStreamer (every pip opencv-python wheel), or
            ``gst-inspect-1.0`` finds no element the pipeline names (``nvarguscamerasrc`` off Jetson).
    """
    if not opencv_has_gstreamer(cv2.getBuildInformation()):
        raise InputError(missing_gstreamer_message(spec, cv2.__version__))
    missing = missing_elements(pipeline or gstreamer_pipeline(spec))
    if missing:
        raise InputError(missing_elements_message(spec, missing))


def missing_elements(pipeline: str) -> list[str] | None:
    """Elements of ``pipeline`` that ``gst-inspect-1.0`` does not find; None when the tool is absent.

    Checked before opening because OpenCV (4.6 at least) never returns from opening a
    pipeline that names an element GStreamer does not have.
    """
    tool = shutil.which("gst-inspect-1.0")
    if tool is None:
        return None
    missing = []
    for name in pipeline_elements(pipeline):
        try:
            found = subprocess.run([tool, "--exists", name], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return None
        if not found:
            missing.append(name)
    return missing


class GstCapture:
    """One camera opened through ``cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)``.

    Call :meth:`open`, then :meth:`read` until it returns None, then :meth:`close`.

    Attributes:
        spec: The camera and its capture settings.
        pipeline: The GStreamer pipeline string that is opened.
    """

    def __init__(self, spec: CameraSpec, pipeline: str | None = None):
        """Record the camera; nothing is opened yet.

        Args:
            spec: The camera (see :func:`sredge.runtime.camera.parse_camera_uri`).
            pipeline: Another pipeline ending in a BGR ``appsink`` to open instead of the
                camera's own (tests use ``videotestsrc``); None: :func:`gstreamer_pipeline` of ``spec``.
        """
        self.spec = spec
        self.pipeline = pipeline or gstreamer_pipeline(spec)
        self._cap = None

    def open(self) -> None:
        """Start the pipeline.

        Raises:
            InputError: OpenCV has no GStreamer, or the pipeline did not start (no such camera,
                a busy device, a size or rate the camera does not offer, not a Jetson for csi://).
        """
        check_gstreamer(self.spec, self.pipeline)
        log.debug("opening %s: %s", self.spec.label, self.pipeline)
        cap = self._open_within(OPEN_TIMEOUT_S)
        if not cap.isOpened():
            cap.release()
            raise InputError(
                f"{self.spec.label} did not open through GStreamer: check that it is connected, not in use and "
                f"offers the size and rate asked for (try: {gst_launch_command(self.pipeline)})"
            )
        self._cap = cap

    def _open_within(self, timeout_s: float):
        """``cv2.VideoCapture(pipeline, CAP_GSTREAMER)`` in a helper thread, so a pipeline that never
        starts (a hung driver, an element gst-inspect could not rule out) fails instead of blocking."""
        result: list = []

        def open_quietly() -> None:
            # OpenCV warns on stderr while a pipeline starts ("Cannot query video position"); a pipeline that
            # fails gets this module's one-line error instead. Errors still show.
            get, set_ = getattr(cv2, "getLogLevel", None), getattr(cv2, "setLogLevel", None)
            level = get() if get and set_ else None
            if level is not None:
                set_(min(level, _CV_LOG_ERROR))
            try:
                result.append(cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER))
            finally:
                if level is not None:
                    set_(level)

        opener = threading.Thread(target=open_quietly, name="gst-open", daemon=True)
        opener.start()
        opener.join(timeout_s)
        if not result:  # the thread is left blocked; it is a daemon and ends with the process
            raise InputError(f"{self.spec.label} did not start within {timeout_s:.0f} s through GStreamer; "
                             f"check the camera with: {gst_launch_command(self.pipeline)}")
        return result[0]

    @property
    def fps(self) -> float | None:
        """Frame rate the pipeline reports, or None when it reports none."""
        fps = self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None else 0.0
        return float(fps) if fps and fps > 0 else None

    def read(self) -> np.ndarray | None:
        """The next frame as ``(H, W, 3)`` uint8 BGR, or None when the pipeline has stopped."""
        if self._cap is None:
            raise RuntimeError("GstCapture is not open; call open() first")
        ok, bgr = self._cap.read()
        if not ok or bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3:
            return None
        return bgr

    def close(self) -> None:
        """Stop the pipeline and release the camera. Safe to call twice."""
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
