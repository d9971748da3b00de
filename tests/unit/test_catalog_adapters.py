"""Database adapters on fixture trees in each database's exact layout."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from tests.helpers.catalog_trees import (FF_METHODS, FF_PAIRS, make_celebdf, make_dfd, make_dfr, make_ff, make_hififace,
                           make_timit, touch)
from data_catalog import ConfigError, paper_taxonomy
from data_catalog.databases import ADAPTERS
from data_catalog.databases.celebdf import carve_val
from data_catalog.errors import AtlasError

TAX = paper_taxonomy()
FF_CLASSES = ("ff-deepfakes", "ff-face2face", "ff-faceshifter", "ff-faceswap", "ff-neuraltextures")


def scan(adapter: str, root: Path, name: str | None = None, **options):
    return ADAPTERS[adapter].scan(root, name=name or adapter, options=options, taxonomy=TAX)


def kinds(result) -> dict[str, list[str]]:
    out = defaultdict(list)
    for p in result.problems:
        out[p.kind].append(p.path)
    return dict(out)


def test_all_adapters_registered():
    assert {"generic", "faceforensics", "google_dfd", "celebdf", "deeperforensics", "hififace",
            "deepfaketimit"} <= set(ADAPTERS)


# --- FaceForensics++ ----------------------------------------------------------------

def test_ff_exact_counts_with_missing_fake_and_symlinked_method(tmp_path):
    ff = make_ff(tmp_path / "ff", missing={"manipulated_sequences/FaceSwap/c23/videos/000_001.mp4"},
                 symlink_method="FaceShifter")
    assert (ff / "manipulated_sequences" / "FaceShifter").is_symlink()
    touch(ff / "original_sequences/youtube/c23/videos/readme.mp4")
    touch(ff / "original_sequences/youtube/c23/videos/999.mp4")
    make_dfd(ff)  # DFD lives in the same tree and is not FF++'s business
    r = scan("faceforensics", ff)
    per = {"train": 6, "val": 2, "test": 4}
    expected = {s: {"real": n, **{c: n for c in FF_CLASSES}} for s, n in per.items()}
    expected["train"]["ff-faceswap"] = 5
    assert r.counts() == {s: dict(sorted(v.items())) for s, v in sorted(expected.items())}
    k = kinds(r)
    assert k["missing_video"] == [str(ff / "manipulated_sequences/FaceSwap/c23/videos/000_001.mp4")]
    assert k["unmatched_file"] == [str(ff / "original_sequences/youtube/c23/videos/readme.mp4")]
    assert k["not_in_split"] == [str(ff / "original_sequences/youtube/c23/videos/999.mp4")]
    assert "unmatched_folder" not in k  # DeepFakeDetection belongs to google_dfd
    fake = next(x for x in r.records if x.relpath == "manipulated_sequences/Deepfakes/c23/videos/003_002.mp4")
    assert (fake.split, fake.identity, fake.source_ids, fake.method, fake.is_fake) == (
        "train", "003", ("003", "002"), "Deepfakes", True)
    real = next(x for x in r.records if x.relpath == "original_sequences/youtube/c23/videos/008.mp4")
    assert (real.split, real.method, real.true_class, real.is_fake) == ("test", "real", "real", False)
    shifter = [x for x in r.records if x.method == "FaceShifter"]
    assert len(shifter) == 12 and all("manipulated_sequences/FaceShifter/" in x.relpath for x in shifter)


def test_ff_pair_splits_never_share_an_original(tmp_path):
    r = scan("faceforensics", make_ff(tmp_path / "ff"))
    split_of_pair = {tuple(sorted(p)): s for s, ps in FF_PAIRS.items() for p in ps}
    seen = defaultdict(set)
    for rec in r.records:
        if rec.is_fake:
            assert rec.split == split_of_pair[tuple(sorted(rec.source_ids))]
            seen[rec.source_ids[0]].add(rec.split)
            seen[rec.source_ids[1]].add(rec.split)
        else:
            seen[rec.identity].add(rec.split)
    assert len(seen) == 12 and all(len(s) == 1 for s in seen.values())
    # both fakes a_b and b_a and both originals of a pair share its split, for every method
    for (a, b), split in split_of_pair.items():
        ids = {x.relpath for x in r.records if x.split == split}
        for m in FF_METHODS:
            assert f"manipulated_sequences/{m}/c23/videos/{a}_{b}.mp4" in ids
            assert f"manipulated_sequences/{m}/c23/videos/{b}_{a}.mp4" in ids
        assert {f"original_sequences/youtube/c23/videos/{v}.mp4" for v in (a, b)} <= ids


def test_ff_conflicting_custom_split_resolves_towards_test(tmp_path):
    pairs = {"train": [["000", "001"]], "val": [], "test": [["000", "002"]]}
    r = scan("faceforensics", make_ff(tmp_path / "ff", pairs=pairs, methods=("Deepfakes",)), methods="Deepfakes")
    splits = {x.relpath.rsplit("/", 1)[1]: x.split for x in r.records}
    assert splits["000.mp4"] == "test" and splits["001.mp4"] == "train" and splits["002.mp4"] == "test"
    assert splits["000_001.mp4"] == "train" and splits["000_002.mp4"] == "test"
    assert any(p.kind == "split_conflict" and p.path == "000" for p in r.problems)


def test_ff_compression_and_missing_method_folder(tmp_path):
    ff = make_ff(tmp_path / "ff", comp="c40", methods=("Deepfakes", "Face2Face"))
    r = scan("faceforensics", ff, compression="c40")
    assert r.counts()["test"] == {"ff-deepfakes": 4, "ff-face2face": 4, "real": 4}
    missing = {p.path for p in r.problems if p.kind == "missing_folder"}
    assert missing == {str(ff / f"manipulated_sequences/{m}/c40/videos")
                       for m in ("FaceSwap", "NeuralTextures", "FaceShifter")}
    with pytest.raises(AtlasError, match="no videos found"):
        scan("faceforensics", ff, compression="c23")


def test_ff_missing_split_file_and_bad_split_file(tmp_path):
    ff = make_ff(tmp_path / "ff", methods=("Deepfakes",))
    (ff / "splits" / "val.json").unlink()
    r = scan("faceforensics", ff)
    assert set(r.counts()) == {"train", "test"}
    assert kinds(r)["missing_split_file"] == [str(ff / "splits" / "val.json")]
    assert sorted(Path(p).name for p in kinds(r)["not_in_split"]) == ["006.mp4", "006_007.mp4", "007.mp4", "007_006.mp4"]
    (ff / "splits" / "test.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"test\.json: not valid JSON"):
        scan("faceforensics", ff)
    (ff / "splits" / "test.json").write_text('[["008"]]')
    with pytest.raises(ConfigError, match=r"test\.json: item 0: expected a pair"):
        scan("faceforensics", ff)


# --- Google DFD -----------------------------------------------------------------------

def test_google_dfd_all_test_unseen_fakes(tmp_path):
    root = make_dfd(tmp_path / "ff")
    r = scan("google_dfd", root, name="dfd")
    assert r.counts() == {"test": {"real": 3, "unseen-fake": 2}}
    fake = next(x for x in r.records if x.is_fake and x.identity == "01")
    assert fake.method == "DeepFakeDetection" and fake.source_ids == ("01", "02")
    assert kinds(r)["unmatched_file"] == [str(root / "manipulated_sequences/DeepFakeDetection/c23/videos/bad_name.mp4")]


# --- Celeb-DF ---------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["Youtube-real", "YouTube-real"])
def test_celebdf_counts_test_list_and_identity_val(tmp_path, spelling):
    root = make_celebdf(tmp_path / "celeb", youtube_spelling=spelling)
    r = scan("celebdf", root)
    c = r.counts()
    assert c["test"] == {"celebdf": 2, "real": 4}
    assert c["train"]["real"] + c["val"]["real"] == 26  # 18 celebrity + 8 YouTube reals outside the list
    assert c["train"]["celebdf"] + c["val"]["celebdf"] == 18
    # val: one of the 10 celebrities and one of the 8 remaining YouTube videos (10 %, rounded, at least 1)
    val_ids = {x.identity for x in r.records if x.split == "val"}
    train_ids = {x.identity for x in r.records if x.split == "train"}
    assert len(val_ids) == 2 and not val_ids & train_ids
    assert sum(i.startswith("youtube-") for i in val_ids) == 1
    celeb = next(i for i in val_ids if not i.startswith("youtube-"))
    n_real = 2 - (celeb in ("id0", "id2"))  # id0_0000 and id2_0000 are listed for test
    n_fake = 2 - (celeb in ("id0", "id1"))  # id0_id1_0000 and id1_id2_0000 are listed for test
    assert c["val"] == {"celebdf": n_fake, "real": n_real + 1}
    k = kinds(r)
    assert k["missing_video"] == [str(root / "Celeb-real/id99_0000.mp4")]
    assert k["label_mismatch"] == [str(root / "Celeb-real/id2_0000.mp4")]
    assert k["unmatched_file"] == [str(root / "Celeb-synthesis/not_a_celeb_name.mp4")]
    yt = next(x for x in r.records if x.relpath == f"{spelling}/00001.mp4")
    assert yt.split == "test" and yt.true_class == "real"
    fake = next(x for x in r.records if x.relpath == "Celeb-synthesis/id3_id4_0001.mp4")
    assert fake.identity == "id3" and fake.source_ids == ("id3", "id4") and fake.true_class == "celebdf"
    # deterministic
    assert [(x.relpath, x.split) for x in scan("celebdf", root).records] == [(x.relpath, x.split) for x in r.records]


def test_celebdf_missing_list_and_bad_list(tmp_path):
    root = make_celebdf(tmp_path / "celeb")
    (root / "List_of_testing_videos.txt").unlink()
    r = scan("celebdf", root, val_fraction=0.0)
    assert set(r.counts()) == {"train"} and r.counts()["train"] == {"celebdf": 20, "real": 30}
    assert kinds(r)["missing_split_file"] == [str(root / "List_of_testing_videos.txt")]
    (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0000.mp4\nreal Celeb-real/id1_0000.mp4\n")
    with pytest.raises(ConfigError, match="List_of_testing_videos.txt: line 2"):
        scan("celebdf", root)


def test_carve_val_is_deterministic_and_proportional():
    ids = [f"id{i}" for i in range(59)]
    a = carve_val(ids, 0.1)
    assert a == carve_val(list(reversed(ids)), 0.1) and len(a) == 6
    assert carve_val(["id0"], 0.5) == set() and len(carve_val(["a", "b"], 0.01)) == 1


# --- DeeperForensics --------------------------------------------------------------------

def test_dfr_variants_splits_and_reals_from_ff_targets(tmp_path):
    ff = make_ff(tmp_path / "ff", methods=())
    root = make_dfr(tmp_path / "dfr")
    r = scan("deeperforensics", root, ff_root=str(ff), split_protocol="deeperforensics")
    assert "leakage_warning" in kinds(r)
    assert r.counts() == {
        "test": {"dfr-end-to-end": 2, "dfr-reenact-postprocess": 2, "real": 2, "unseen-fake": 1},
        "train": {"dfr-end-to-end": 1, "dfr-reenact-postprocess": 1, "real": 1, "unseen-fake": 1},
        "val": {"dfr-end-to-end": 1, "dfr-reenact-postprocess": 1, "real": 1, "unseen-fake": 1},
    }
    reals = {x.identity: x for x in r.records if not x.is_fake}
    assert set(reals) == {"000", "002", "004", "008"}
    assert reals["004"].path == ff / "original_sequences/youtube/c23/videos/004.mp4"
    assert reals["004"].relpath == "@ff_root/original_sequences/youtube/c23/videos/004.mp4"
    assert not any("source_videos" in str(x.path) for x in r.records)
    level = next(x for x in r.records if x.method == "end_to_end_level_2")
    assert level.true_class == "unseen-fake"
    missing = sorted(Path(p).relative_to(root).as_posix() for p in kinds(r)["missing_video"])
    assert missing == ["manipulated_videos/end_to_end/010_M105.mp4", "manipulated_videos/end_to_end_level_2/008_M104.mp4",
                       "manipulated_videos/end_to_end_level_2/010_M105.mp4",
                       "manipulated_videos/reenact_postprocess/010_M105.mp4"]
    assert kinds(r)["unmatched_file"] == [str(root / "manipulated_videos/end_to_end/notes.mp4")]
    # restricting variants; no ff_root: fakes only, reported
    r2 = scan("deeperforensics", root, variants="end_to_end,reenact_postprocess")
    assert r2.counts()["test"] == {"dfr-end-to-end": 2, "dfr-reenact-postprocess": 2}
    assert "no_reals" in kinds(r2)
    # the default protocol without FF++'s split files falls back to DF's lists, with a warning
    assert "falling back" in " ".join(p.message for p in r2.problems if p.kind == "leakage_warning")


def test_dfr_fakes_follow_the_ff_split_of_their_target(tmp_path):
    """The paper's protocol (its Table 1 counts): a DeeperForensics fake takes the FF++ split of its target,
    and the target is the real in that split — 2 x (FF++ test targets present) test fakes."""
    ff = make_ff(tmp_path / "ff", methods=())
    root = make_dfr(tmp_path / "dfr")
    r = scan("deeperforensics", root, ff_root=str(ff), variants="end_to_end,reenact_postprocess")
    ff_split = {v: split for split, pairs in FF_PAIRS.items() for pair in pairs for v in pair}
    fakes = [x for x in r.records if x.is_fake]
    assert fakes and all(x.split == ff_split[x.identity] for x in fakes)
    reals = {x.identity: x.split for x in r.records if not x.is_fake}
    assert reals == {t: ff_split[t] for t in {x.identity for x in fakes}}
    test_targets = {x.identity for x in fakes if x.split == "test"}
    assert test_targets == {"008"} and r.counts()["test"] == {"dfr-end-to-end": 1, "dfr-reenact-postprocess": 1,
                                                              "real": 1}
    # 002 is listed in DF's test.txt but its FF++ pair is training: under the paper's protocol it trains
    assert {x.split for x in fakes if x.identity == "002"} == {"train"}
    assert "split_conflict" not in kinds(r) and "leakage_warning" not in kinds(r)


# --- HifiFace ------------------------------------------------------------------------------

def test_hififace_follows_ff_pair_splits(tmp_path):
    ff = make_ff(tmp_path / "ff", methods=())
    root = make_hififace(tmp_path / "hifi")
    r = scan("hififace", root, ff_root=str(ff))
    assert r.counts() == {"test": {"hififace": 2, "real": 2}, "train": {"hififace": 2, "real": 2},
                          "val": {"hififace": 1, "real": 1}}
    k = kinds(r)
    assert k["not_in_split"] == [str(root / "999_998.mp4")] and k["unmatched_file"] == [str(root / "junk.mp4")]
    assert len(k["missing_video"]) == 7  # 12 fakes of the split pairs, 5 present
    # splits_dir alone: same fakes, no reals
    r2 = scan("hififace", root, splits_dir=str(ff / "splits"))
    assert r2.counts() == {"test": {"hififace": 2}, "train": {"hififace": 2}, "val": {"hififace": 1}}
    with pytest.raises(ConfigError, match="ff_root .*or splits_dir"):
        scan("hififace", root)


# --- DeepfakeTIMIT ---------------------------------------------------------------------------

def test_deepfaketimit_fakes_and_vidtimit_reals(tmp_path):
    root, vid = make_timit(tmp_path / "timit", tmp_path / "vidtimit")
    r = scan("deepfaketimit", root, vidtimit_root=str(vid))
    assert r.counts() == {"test": {"real": 2, "unseen-fake": 4}}
    methods = sorted({x.method for x in r.records if x.is_fake})
    assert methods == ["DeepfakeTIMIT-HQ", "DeepfakeTIMIT-LQ"]
    real = next(x for x in r.records if not x.is_fake)
    assert real.relpath == "@vidtimit_root/fadg0/sa1.avi" and real.identity == "fadg0"
    k = kinds(r)
    assert k["no_videos"] == [str(vid / "mcem0")] and k["unmatched_file"] == [str(root / "readme.avi")]
    assert scan("deepfaketimit", root).counts() == {"test": {"unseen-fake": 4}}


# --- generic (fixes made here) -------------------------------------------------------------

def test_generic_manifest_through_symlinked_folder(tmp_path):
    elsewhere = tmp_path / "store"
    touch(elsewhere / "a.mp4")
    touch(elsewhere / "b.mp4")
    root = tmp_path / "set"
    root.mkdir()
    (root / "fake").symlink_to(elsewhere, target_is_directory=True)
    touch(root / "real" / "r.mp4")
    csv = root / "labels.csv"
    csv.write_text("path,label,split\nfake/a.mp4,fake,train\nfake/b.mp4,fake,test\nreal/r.mp4,real,test\n")
    r = scan("generic", root, manifest=str(csv))
    assert r.counts() == {"test": {"real": 1, "unseen-fake": 1}, "train": {"unseen-fake": 1}}
    assert sorted(x.relpath for x in r.records) == ["fake/a.mp4", "fake/b.mp4", "real/r.mp4"]
    # folder layout through the same symlink
    assert scan("generic", root).counts() == {"test": {"real": 1, "unseen-fake": 2}}
    csv.write_text("path,label\n../outside.mp4,fake\n")
    with pytest.raises(ConfigError, match="escapes the database root"):
        scan("generic", root, manifest=str(csv))
