"""Baselines for scripts/bench-verify: OpenCV template matching and Pillow JPEG encoding.

Usage: python verify_baseline.py WORK_DIR RUNS
Reads frame.png, template.png and photo.png from WORK_DIR (written by verify-bench), writes
pillow_q80.jpg there, and prints one JSON object with the measurements (medians over RUNS).
Single-threaded (cv2.setNumThreads(1)) so that it compares like with like.
"""

import io
import json
import os
import statistics
import sys
import time

import cv2
import PIL
from PIL import Image, features


def median_ms(fn, runs):
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def main():
    work, runs = sys.argv[1], int(sys.argv[2])
    cv2.setNumThreads(1)
    frame = cv2.imread(os.path.join(work, "frame.png"), cv2.IMREAD_GRAYSCALE)
    template = cv2.imread(os.path.join(work, "template.png"), cv2.IMREAD_GRAYSCALE)
    result = {}
    scores = cv2.matchTemplate(frame, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, loc = cv2.minMaxLoc(scores)
    result["opencv_version"] = cv2.__version__
    result["opencv_threads"] = cv2.getNumThreads()
    result["match_x"], result["match_y"], result["match_score"] = loc[0], loc[1], best
    # Like labwright's find_template: the score map and its best position.
    result["match_ms"] = median_ms(
        lambda: cv2.minMaxLoc(cv2.matchTemplate(frame, template, cv2.TM_CCOEFF_NORMED)), runs
    )

    photo = Image.open(os.path.join(work, "photo.png")).convert("RGB")
    photo.load()

    def encode():
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=80)
        return buf

    data = encode().getvalue()
    with open(os.path.join(work, "pillow_q80.jpg"), "wb") as f:
        f.write(data)
    result["pillow_version"] = PIL.__version__
    result["libjpeg_turbo_version"] = features.version("libjpeg_turbo")
    result["pillow_q80_bytes"] = len(data)
    result["pillow_encode_ms"] = median_ms(encode, runs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
