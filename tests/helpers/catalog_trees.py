"""Fixture trees in each database's exact published layout (empty files).

Used by tests/test_catalog*.py; every builder returns the root it made.
"""

from __future__ import annotations

import json
from pathlib import Path

FF_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
FF_PAIRS = {
    "train": [["000", "001"], ["002", "003"], ["004", "005"]],
    "val": [["006", "007"]],
    "test": [["008", "009"], ["010", "011"]],
}


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def make_ff(root: Path, comp: str = "c23", pairs=FF_PAIRS, methods=FF_METHODS, missing=(),
            symlink_method: str | None = None) -> Path:
    """FF++ with `pairs`; `missing` lists relpaths not to create; `symlink_method`'s
    folder lives elsewhere and is reached through a symlink."""
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for split, ps in pairs.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(ps))
    originals = sorted({v for ps in pairs.values() for p in ps for v in p})
    files = [f"original_sequences/youtube/{comp}/videos/{v}.mp4" for v in originals]
    for m in methods:
        for ps in pairs.values():
            for a, b in ps:
                files += [f"manipulated_sequences/{m}/{comp}/videos/{a}_{b}.mp4",
                          f"manipulated_sequences/{m}/{comp}/videos/{b}_{a}.mp4"]
    for rel in files:
        if rel not in missing:
            touch(root / rel)
    if symlink_method:
        real = root.parent / f"elsewhere-{symlink_method}"
        src = root / "manipulated_sequences" / symlink_method
        src.rename(real)
        src.symlink_to(real, target_is_directory=True)
    return root


def make_dfd(root: Path, comp: str = "c23") -> Path:
    for rel in ("01__exit_phone_room.mp4", "02__walking_outside.mp4", "03__kitchen_pan.mp4"):
        touch(root / f"original_sequences/actors/{comp}/videos/{rel}")
    for rel in ("01_02__exit_phone_room__YVGY8LOK.mp4", "02_03__walking_outside__XK3LOD2C.mp4"):
        touch(root / f"manipulated_sequences/DeepFakeDetection/{comp}/videos/{rel}")
    touch(root / f"manipulated_sequences/DeepFakeDetection/{comp}/videos/bad_name.mp4")
    return root


CELEB_TEST_LIST = """1 YouTube-real/00000.mp4
1 YouTube-real/00001.mp4
1 Celeb-real/id0_0000.mp4
0 Celeb-real/id2_0000.mp4
0 Celeb-synthesis/id0_id1_0000.mp4
0 Celeb-synthesis/id1_id2_0000.mp4
1 Celeb-real/id99_0000.mp4
"""


def make_celebdf(root: Path, youtube_spelling: str = "Youtube-real") -> Path:
    """10 celebrities x 2 real + 2 fake videos, 10 YouTube videos; the test list
    names 6 present videos (one with a contradicting label) and 1 absent one."""
    for i in range(10):
        for k in range(2):
            touch(root / "Celeb-real" / f"id{i}_{k:04d}.mp4")
            touch(root / "Celeb-synthesis" / f"id{i}_id{(i + 1) % 10}_{k:04d}.mp4")
    for k in range(10):
        touch(root / youtube_spelling / f"{k:05d}.mp4")
    touch(root / "Celeb-synthesis" / "not_a_celeb_name.mp4")
    (root / "List_of_testing_videos.txt").write_text(CELEB_TEST_LIST)
    return root


def make_dfr(root: Path) -> Path:
    """Targets 000 (train), 004 (val), 002 and 008 (test) against the FF++
    fixture's pairs (000, 002, 004 train; 008 test); 010_M105 is listed but absent."""
    names = {"000_M101": "train", "004_M103": "val", "002_W102": "test", "008_M104": "test"}
    for variant in ("end_to_end", "reenact_postprocess"):
        for n in names:
            touch(root / "manipulated_videos" / variant / f"{n}.mp4")
    for n in ("000_M101", "004_M103", "002_W102"):
        touch(root / "manipulated_videos" / "end_to_end_level_2" / f"{n}.mp4")
    touch(root / "manipulated_videos" / "end_to_end" / "notes.mp4")
    touch(root / "source_videos" / "M101" / "BlendShape" / "camera_front.mp4")  # not the reals
    lists = root / "lists" / "splits"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("000_M101.mp4\n")
    (lists / "val.txt").write_text("004_M103.mp4\n")
    (lists / "test.txt").write_text("002_W102.mp4\n008_M104.mp4\n010_M105.mp4\n")
    return root


def make_hififace(root: Path) -> Path:
    for rel in ("000_001.mp4", "001_000.mp4", "006_007.mp4", "008_009.mp4", "sub/010_011.mp4",
                "999_998.mp4", "junk.mp4"):
        touch(root / rel)
    return root


def make_timit(root: Path, vid: Path) -> tuple[Path, Path]:
    for rel in ("lower_quality/fadg0/sa1-video-fram1.avi", "lower_quality/fadg0/sa2-video-fram1.avi",
                "higher_quality/fadg0/sa1-video-fram1.avi", "lower_quality/mcem0/si1-video-mdab0.avi",
                "readme.avi"):
        touch(root / rel)
    touch(vid / "fadg0" / "sa1.avi")
    touch(vid / "fadg0" / "sa2.avi")
    touch(vid / "mcem0" / "video" / "si1" / "001.jpg")  # frames only: no reals for mcem0
    return root, vid


# --- DeepfakeBench's preprocessed layout -----------------------------------------------------------
DFB_MACHINE = "/home/preprocessor/DeepfakeBench/datasets/rgb"  # where "their" machine kept the data


def _frames(root: Path, rel: str, n: int) -> list[str]:
    """`n` small PNG face crops in `root/rel` (written in reverse so directory order is not name order);
    their paths as the preprocessing machine named them."""
    import cv2
    import numpy as np

    folder = root / rel
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(rel))
    names = [f"{i * 7:03d}.png" for i in range(n)]
    for name in reversed(names):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (24, 20, 3), dtype=np.uint8))
    return [f"{DFB_MACHINE}/{rel}/{name}" for name in reversed(names)]


def make_deepfakebench(root: Path, frames: int = 3) -> Path:
    """DeepfakeBench's layout under `root` (its datasets/rgb folder): FF++ (FF-real and FF-DF at c23, a
    few at c40 too) with its pair split files, Celeb-DF v2 with its test list, DFD; JSON files in
    `root/dataset_json` written as rearrange.py writes them (absolute paths of another machine, Celeb-DF's
    test videos under train, val and test, DFD's in all three splits), plus one FF-real video listed in
    two splits, a DF_real video and an unknown label. Returns the JSON folder."""
    out = root / "dataset_json"
    out.mkdir(parents=True, exist_ok=True)
    ff = root / "FaceForensics++"
    ff.mkdir(parents=True, exist_ok=True)
    for split, ps in FF_PAIRS.items():
        (ff / f"{split}.json").write_text(json.dumps(ps))  # where DeepfakeBench keeps FF++'s split files
    fake = {s: {c: {} for c in ("c23", "c40")} for s in ("train", "val", "test")}
    real = {s: {c: {} for c in ("c23", "c40")} for s in ("train", "val", "test")}
    for split, ps in FF_PAIRS.items():
        for a, b in ps:
            for v in (a, b):
                rel = f"FaceForensics++/original_sequences/youtube/c23/frames/{v}"
                real[split]["c23"][v] = {"label": "FF-real", "frames": _frames(root, rel, frames)}
            for t, s in ((a, b), (b, a)):
                rel = f"FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/{t}_{s}"
                fake[split]["c23"][f"{t}_{s}"] = {"label": "FF-DF", "frames": _frames(root, rel, frames),
                                                  "masks": []}
    real["test"]["c23"]["000"] = real["train"]["c23"]["000"]  # hand-edited: one real in two splits
    rel = "FaceForensics++/manipulated_sequences/Deepfakes/c40/frames/000_001"
    fake["train"]["c40"]["000_001"] = {"label": "FF-DF", "frames": _frames(root, rel, frames)}
    (out / "FF-DF.json").write_text(json.dumps({"FF-DF": {"FF-real": real, "FF-DF": fake}}))

    cdf = root / "Celeb-DF-v2"
    celeb = {"CelebDFv2_real": {s: {} for s in ("train", "val", "test")},
             "CelebDFv2_fake": {s: {} for s in ("train", "val", "test")}}
    test_list = []
    for i in range(6):
        for folder, name, label in (("Celeb-real", f"id{i}_0000", "CelebDFv2_real"),
                                    ("Celeb-synthesis", f"id{i}_id{(i + 1) % 6}_0000", "CelebDFv2_fake"),
                                    ("YouTube-real", f"{i:05d}", "CelebDFv2_real")):
            entry = {"label": label, "frames": _frames(root, f"Celeb-DF-v2/{folder}/frames/{name}", frames)}
            celeb[label]["train"][name] = entry
            if i < 2:  # the test list; rearrange.py lists these under val and test too
                celeb[label]["val"][name] = celeb[label]["test"][name] = entry
                test_list.append(f"{'1' if label.endswith('real') else '0'} {folder}/{name}.mp4")
    (cdf / "List_of_testing_videos.txt").write_text("\n".join(test_list) + "\n")
    celeb["DF_real"] = {"train": {"M004": {"label": "DF_real", "frames": _frames(
        root, "DeeperForensics-1.0/source_videos/M004/frames/M004", 1)}}}
    celeb["DFDC_Fake"] = {"test": {"aaa": {"label": "DFDC_Fake", "frames": _frames(root, "DFDC/test/frames/aaa", 1)},
                                   "bbb": {"label": "DFDC_Fake", "frames": []}}}
    celeb["Mystery_fake"] = {"test": {"zzz": {"label": "Mystery_fake", "frames": _frames(root, "X/frames/zzz", 1)}}}
    (out / "Celeb-DF-v2.json").write_text(json.dumps({"Celeb-DF-v2": celeb}))

    dfd = {"DFD_real": {}, "DFD_fake": {}}
    for label, name, kind in (("DFD_real", "01__exit_phone_room", "original_sequences/actors"),
                              ("DFD_fake", "01_02__exit_phone_room__YVGY8LOK",
                               "manipulated_sequences/DeepFakeDetection")):
        entry = {"label": label, "frames": _frames(root, f"FaceForensics++/{kind}/c23/frames/{name}", frames)}
        dfd[label] = {s: {"c23": {name: entry}} for s in ("train", "val", "test")}
    (out / "DeepFakeDetection.json").write_text(json.dumps({"DeepFakeDetection": dfd}))
    return out
