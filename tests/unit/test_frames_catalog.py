"""Frames as input and DeepfakeBench data in the catalog (issue 18 items 5-6): frame folders in the generic
adapter, files not used reported with a reason, and the DeepfakeBench adapter's frames, labels and splits."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from data_catalog import ConfigError, paper_taxonomy
from data_catalog.databases import ADAPTERS
from data_catalog.names import natural_key
from tests.helpers.catalog_trees import DFB_MACHINE, make_deepfakebench, touch

TAX = paper_taxonomy()


def scan(adapter: str, root: Path, **options):
    return ADAPTERS[adapter].scan(root, name=adapter if adapter != "deepfakebench" else "dfb", options=options,
                                  taxonomy=TAX)


def problems(result) -> dict[str, list]:
    out = defaultdict(list)
    for p in result.problems:
        out[p.kind].append(p)
    return dict(out)


def test_natural_order_of_frame_names():
    names = ["frame10.png", "frame2.png", "Frame11.png", "frame1.png", "frame02.png", "a.png"]
    assert sorted(names, key=natural_key) == ["a.png", "frame1.png", "frame02.png", "frame2.png", "frame10.png",
                                              "Frame11.png"]


# --- the generic adapter: frame folders ----------------------------------------------------------

def test_generic_frame_folders_are_videos_and_every_other_file_is_reported(tmp_path):
    root = tmp_path / "set"
    for n in ("f10.png", "f2.png", "f1.jpg"):
        touch(root / "fake" / "Deepfakes" / "clip1" / n)      # a frame folder under a method folder
    touch(root / "fake" / "Deepfakes" / "clip2.mp4")
    touch(root / "fake" / "loose" / "x.mp4")
    touch(root / "fake" / "loose" / "still.jpg")               # beside a video: not guessed at
    touch(root / "fake" / "loose" / "anim.gif")
    touch(root / "real" / "r1" / "0001.webp")                   # a one-image frame folder
    touch(root / "real" / "r1" / "landmarks.npy")
    touch(root / "README.txt")                                  # outside real/ and fake/
    r = scan("generic", root)
    by_rel = {x.relpath: x for x in r.records}
    assert set(by_rel) == {"fake/Deepfakes/clip1", "fake/Deepfakes/clip2.mp4", "fake/loose/x.mp4", "real/r1"}
    clip = by_rel["fake/Deepfakes/clip1"]
    assert [p.name for p in clip.frames] == ["f1.jpg", "f2.png", "f10.png"]
    assert clip.method == "Deepfakes" and clip.true_class == "unseen-fake"  # generic:Deepfakes is no class
    assert clip.path == root / "fake" / "Deepfakes" / "clip1" and not clip.face_crops
    assert by_rel["fake/Deepfakes/clip2.mp4"].frames == ()
    assert by_rel["real/r1"].true_class == "real" and len(by_rel["real/r1"].frames) == 1
    kinds = {k: [Path(p.path).name for p in v] for k, v in problems(r).items()}
    assert kinds == {"stray_image": ["still.jpg"], "refused_image": ["anim.gif"], "not_media": ["landmarks.npy"],
                     "not_used": ["README.txt"]}
    assert "GIF" in problems(r)["refused_image"][0].message
    # the unlabelled layout: the root itself may be the frame folder
    frames_only = tmp_path / "frames"
    for n in ("2.png", "1.png"):
        touch(frames_only / n)
    (only,) = scan("generic", frames_only).records
    assert only.relpath == "." and [p.name for p in only.frames] == ["1.png", "2.png"]


def test_generic_folder_of_gifs_only_says_why_nothing_is_used(tmp_path):
    touch(tmp_path / "gifs" / "a.gif")
    from data_catalog.errors import AtlasError

    with pytest.raises(AtlasError, match="folders of .png"):
        scan("generic", tmp_path / "gifs")


def test_generic_manifest_rows_may_name_frame_folders_and_images(tmp_path):
    root = tmp_path / "m"
    touch(root / "v.mp4")
    touch(root / "clip" / "2.png")
    touch(root / "clip" / "10.png")
    touch(root / "photo.jpg")
    touch(root / "anim.gif")
    (root / "empty").mkdir()
    csv = root / "labels.csv"
    csv.write_text("path,label\nv.mp4,real\nclip,fake\nphoto.jpg,fake\nanim.gif,fake\nempty,real\n")
    r = scan("generic", root, manifest=str(csv))
    by_rel = {x.relpath: x for x in r.records}
    assert set(by_rel) == {"v.mp4", "clip", "photo.jpg"}
    assert [p.name for p in by_rel["clip"].frames] == ["2.png", "10.png"]
    assert by_rel["photo.jpg"].frames == (root / "photo.jpg",)       # one image: a one-frame video
    assert {k: len(v) for k, v in problems(r).items()} == {"refused_image": 1, "no_frames": 1}


# --- DeepfakeBench ------------------------------------------------------------------------------

@pytest.fixture
def dfb(tmp_path):
    root = tmp_path / "rgb"
    return root, make_deepfakebench(root)


def test_deepfakebench_frames_labels_and_this_projects_splits(dfb):
    root, jsons = dfb
    r = scan("deepfakebench", root, json=str(jsons), path_prefix_from=DFB_MACHINE)
    recs = {x.relpath: x for x in r.records}
    assert r.counts() == {"test": {"celebdf": 2, "ff-deepfakes": 4, "real": 9, "unseen-fake": 2},
                          "train": {"celebdf": 3, "ff-deepfakes": 6, "real": 12},
                          "val": {"celebdf": 1, "ff-deepfakes": 2, "real": 4}}
    fake = recs["FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/008_009"]
    assert (fake.split, fake.true_class, fake.identity, fake.source_ids, fake.method) == \
        ("test", "ff-deepfakes", "008", ("008", "009"), "Deepfakes")
    assert fake.face_crops and [p.name for p in fake.frames] == ["000.png", "007.png", "014.png"]  # name order
    assert all(p.is_file() and root in p.parents for p in fake.frames)  # rewritten to this machine
    assert not any("/c40/" in k for k in recs)  # option compression (default c23) picks one level
    # θ never from test: Celeb-DF's test-list videos (DeepfakeBench lists them in train, val and test too)
    # are test only, and no video is used in two splits
    test_list = (root / "Celeb-DF-v2" / "List_of_testing_videos.txt").read_text().split()[1::2]
    listed_test = {f"Celeb-DF-v2/{p.split('/')[0]}/frames/{Path(p).stem}" for p in test_list}
    assert len(listed_test) == 6 and {recs[k].split for k in listed_test} == {"test"}
    celeb_val = {k for k, x in recs.items() if k.startswith("Celeb-DF-v2") and x.split == "val"}
    assert celeb_val and not celeb_val & listed_test  # validation (where θ is set) holds no test video
    assert len(recs) == len(r.records)
    dfd = [x for x in r.records if x.relpath.startswith("FaceForensics++/original_sequences/actors")
           or "DeepFakeDetection" in x.relpath]
    assert {(x.split, x.true_class) for x in dfd} == {("test", "real"), ("test", "unseen-fake")}
    # every listing in several splits is reported, with the split used
    several = {Path(p.path).name: p.message for p in problems(r)["several_splits"]}
    assert "used in test only" in several["id0_0000"] and "train, val, test" in several["id0_0000"]
    assert "used in train only" in several["000"]  # the hand-edited FF-real listed in train and test
    assert "01__exit_phone_room" in several
    # labels this project does not use, or does not know: reported, not guessed
    not_used = " ".join(p.message for p in problems(r)["not_used"])
    assert "DF_real" in not_used and "Mystery_fake" in not_used
    assert problems(r)["bad_entry"][0].message.endswith("lists no frames; not used")


def test_deepfakebench_paths_of_another_machine_need_the_rewrite(dfb):
    root, jsons = dfb
    with pytest.raises(ConfigError, match="path_prefix_from"):
        scan("deepfakebench", root, json=str(jsons))
    with pytest.raises(ConfigError, match="needs option json"):
        scan("deepfakebench", root)
    # one file at a time; missing frames and a missing compression level are reported
    gone = root / "FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/000_001"
    for f in gone.iterdir():
        f.unlink()
    (root / "FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/002_003/000.png").unlink()
    r = scan("deepfakebench", root, json=str(jsons / "FF-DF.json"), path_prefix_from=DFB_MACHINE)
    kinds = problems(r)
    assert [Path(p.path).name for p in kinds["missing_video"]] == ["000_001"]
    assert [Path(p.path).name for p in kinds["missing_frames"]] == ["002_003"]
    assert "000.png" not in [p.name for x in r.records for p in x.frames if x.relpath.endswith("002_003")]
    with pytest.raises(ConfigError, match="no raw level in this JSON \\(it has c23, c40\\): set option compression"):
        scan("deepfakebench", root, json=str(jsons / "FF-DF.json"), path_prefix_from=DFB_MACHINE, compression="raw")
    bad = jsons / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        scan("deepfakebench", root, json=str(bad), path_prefix_from=DFB_MACHINE)


def test_deepfakebench_without_protocol_files_leaves_videos_out_with_the_reason(dfb):
    root, jsons = dfb
    for f in (root / "FaceForensics++").glob("*.json"):
        f.unlink()
    r = scan("deepfakebench", root, json=str(jsons / "FF-DF.json"), path_prefix_from=DFB_MACHINE)
    assert r.records == []
    kinds = problems(r)
    assert "missing_split_file" in kinds and "not_in_split" in kinds


def test_deepfakebench_labels_table_maps_to_the_taxonomy():
    from data_catalog.databases.deepfakebench import LABELS

    for label, want in {"FF-DF": "ff-deepfakes", "FF-F2F": "ff-face2face", "FF-FS": "ff-faceswap",
                        "FF-NT": "ff-neuraltextures", "FF-FH": "ff-faceshifter", "CelebDFv2_fake": "celebdf",
                        "DF_fake": "dfr-end-to-end", "FF-real": "real", "CelebDFv2_real": "real",
                        "DFD_real": "real", "DFD_fake": "unseen-fake", "DFDC_Fake": "unseen-fake"}.items():
        lab = LABELS[label]
        assert TAX.class_for(("dfb", "deepfakebench", lab.database), lab.method, lab.is_fake) == want, label


def test_deepfakebench_fake_splits_follow_the_ff_target(tmp_path):
    """DeeperForensics fakes in DeepfakeBench take the FF++ split of their target (the paper's protocol)."""
    from tests.helpers.catalog_trees import DFB_MACHINE as M, FF_PAIRS, _frames

    root = tmp_path / "rgb"
    (root / "FaceForensics++").mkdir(parents=True)
    for split, ps in FF_PAIRS.items():
        (root / "FaceForensics++" / f"{split}.json").write_text(json.dumps(ps))
    videos = {}
    for name in ("000_M101", "008_W102"):  # targets 000 (train pair) and 008 (test pair)
        rel = f"DeeperForensics-1.0/manipulated_videos/reenact_postprocess/frames/{name}"
        videos[name] = {"label": "DF_fake", "frames": _frames(root, rel, 2)}
    data = {"DeeperForensics-1.0": {"DF_fake": {"train": videos, "val": videos, "test": videos}}}
    (root / "DF.json").write_text(json.dumps(data))
    r = scan("deepfakebench", root, json=str(root / "DF.json"), path_prefix_from=M)
    got = {x.relpath.rsplit("/", 1)[1]: (x.split, x.true_class, x.method) for x in r.records}
    assert got == {"000_M101": ("train", "dfr-reenact-postprocess", "reenact_postprocess"),
                   "008_W102": ("test", "dfr-reenact-postprocess", "reenact_postprocess")}
