"""engine.catalog: roles, de-duplication across databases, split conflicts, the store write."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.catalog_trees import make_celebdf, make_dfd, make_dfr, make_ff, make_hififace, touch
from data_catalog.records import VideoRecord
from engine import catalog
from engine.config import load_config
from engine.store import Store

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, superset: list[str], cross_db: list[str], tables: str) -> Path:
    f = tmp_path / "exp.toml"
    f.write_text(f"[sources]\nsuperset = {superset!r}\ncross_db = {cross_db!r}\n{tables}")
    return f


@pytest.fixture
def trees(tmp_path):
    ff = make_ff(tmp_path / "ff", methods=("Deepfakes",))
    make_dfd(ff)
    dfr = make_dfr(tmp_path / "dfr")
    hifi = make_hififace(tmp_path / "hifi")
    return ff, dfr, hifi


def ff_dfr_config(tmp_path, ff, dfr, hifi: Path | None = None, protocol: str = "deeperforensics"):
    tables = (f'[sources.faceforensics]\nroot = "{ff}"\nmethods = ["Deepfakes"]\n'
              f'[sources.deeperforensics]\nroot = "{dfr}"\nff_root = "{ff}"\nsplit_protocol = "{protocol}"\n'
              f'[sources.dfd]\nadapter = "google_dfd"\nroot = "{ff}"\n')
    superset = ["faceforensics", "deeperforensics"]
    if hifi:
        tables += f'[sources.hififace]\nroot = "{hifi}"\nff_root = "{ff}"\n'
        superset.append("hififace")
    return load_config(write_config(tmp_path, superset, ["dfd"], tables))


def test_dedup_keeps_one_record_and_resolves_conflicts_towards_test(tmp_path, trees):
    ff, dfr, _ = trees
    report = catalog.collect(ff_dfr_config(tmp_path, ff, dfr))
    assert [s.name for s in report.scans] == ["faceforensics", "deeperforensics", "dfd"]
    assert [s.role for s in report.scans] == ["superset", "superset", "cross_db"]
    # FF++ pairs: 000,002,004 train; 008 test. DFR targets: 000 train, 004 val, 002 and 008 test.
    dups = {Path(d.path).name: d for d in report.duplicates}
    assert set(dups) == {"000.mp4", "002.mp4", "004.mp4", "008.mp4"}
    conflicts = {Path(d.path).name: d for d in report.split_conflicts}
    assert set(conflicts) == {"002.mp4", "004.mp4"}
    assert conflicts["002.mp4"].kept == "deeperforensics/@ff_root/original_sequences/youtube/c23/videos/002.mp4"
    assert conflicts["002.mp4"].split == "test" and conflicts["004.mp4"].split == "val"
    assert dups["000.mp4"].kept == "faceforensics/original_sequences/youtube/c23/videos/000.mp4"  # tie: first db
    assert dups["008.mp4"].kept.startswith("faceforensics/") and dups["008.mp4"].split == "test"
    ffs, dfrs = report.scan("faceforensics"), report.scan("deeperforensics")
    assert ffs.counts()["train"] == {"ff-deepfakes": 6, "real": 4}  # 002 and 004 moved to DFR
    assert ffs.counts()["test"] == {"ff-deepfakes": 4, "real": 4}
    assert {s: c.get("real", 0) for s, c in dfrs.counts().items()} == {"train": 0, "val": 1, "test": 1}
    # every real path appears exactly once over the whole catalog
    paths = [str(Path(r.path).resolve()) for r in report.records]
    assert len(paths) == len(set(paths))
    reals = [r for r in report.records if not r.is_fake and r.database != "dfd"]
    assert len(reals) == 12
    # problems include the conflicts, named by the kept database
    probs = [(db, p.kind) for db, p in report.problems()]
    assert probs.count(("deeperforensics", "split_conflict")) == 2 and probs.count(("faceforensics", "split_conflict")) == 2
    assert probs.count(("faceforensics", "duplicate")) == 2 and probs.count(("deeperforensics", "duplicate")) == 2


def test_leakage_check_finds_the_planted_cases(tmp_path, trees):
    """DF's own lists put targets 002 (an FF++ training pair) in test and 004 in val: FF++'s training fakes of
    those people are then val/test reals. The paper's protocol (DF follows its target's FF++ split) has none."""
    ff, dfr, _ = trees
    leaks = catalog.leakage(catalog.collect(ff_dfr_config(tmp_path, ff, dfr)))
    found = {(lk.kind, lk.train_database, lk.other_database, lk.other_split): set(lk.ids) for lk in leaks}
    assert found[("identity", "faceforensics", "deeperforensics", "test")] == {"002"}
    assert found[("identity", "faceforensics", "deeperforensics", "val")] == {"004"}
    assert found[("source", "faceforensics", "deeperforensics", "test")] == {"002"}  # the 003_002 fake's source
    assert all(lk.n_train_fakes >= 1 and lk.n_reals == 1 for lk in leaks)
    report = catalog.collect(ff_dfr_config(tmp_path, ff, dfr, protocol="ff_target"))
    assert catalog.leakage(report) == [] and report.split_conflicts == []
    summary = {(r["database"], r["split"]): r for r in catalog.protocol_summary(report)}
    assert summary[("deeperforensics", "test")]["fakes by class"] == {"dfr-end-to-end": 1, "dfr-reenact-postprocess": 1}
    assert summary[("deeperforensics", "test")]["reals"] == 1  # the FF++ test target 008, shared with FF++
    assert summary[("faceforensics", "train")]["identities"] >= 3


def test_cross_db_is_tested_whole(tmp_path):
    celeb = make_celebdf(tmp_path / "celeb")
    ff = make_ff(tmp_path / "ff", methods=("Deepfakes",))
    cfg = load_config(write_config(tmp_path, ["faceforensics"], ["celebdf"],
                                   f'[sources.faceforensics]\nroot = "{ff}"\nmethods = "Deepfakes"\n'
                                   f'[sources.celebdf]\nroot = "{celeb}"\n'))
    report = catalog.collect(cfg)
    assert report.scan("celebdf").counts() == {"test": {"celebdf": 20, "real": 30}}
    assert set(report.scan("faceforensics").counts()) == {"train", "val", "test"}


def test_record_writes_videos_datasets_problems_and_replaces(tmp_path, trees):
    ff, dfr, hifi = trees
    cfg = ff_dfr_config(tmp_path, ff, dfr)
    store = Store(tmp_path / "a.duckdb")
    report = catalog.collect(cfg)
    n = catalog.record(store, report, cfg)
    assert n == len(report.records) == store.scalar("SELECT count(*) FROM videos")
    assert store.scalar("SELECT count(DISTINCT path) FROM videos") == n
    ds = store.df("SELECT dataset, role, labelled FROM datasets ORDER BY dataset")
    assert ds["dataset"].tolist() == ["deeperforensics/test", "deeperforensics/train", "deeperforensics/val",
                                      "dfd/test", "faceforensics/test", "faceforensics/train", "faceforensics/val"]
    assert set(ds[ds.dataset == "dfd/test"].role) == {"cross_db"} and ds.labelled.all()
    by = store.df("SELECT dataset, true_class, count(*) AS n FROM videos GROUP BY ALL")
    assert int(by[(by.dataset == "faceforensics/train") & (by.true_class == "real")].n.iloc[0]) == 4
    row = store.df("SELECT * FROM videos WHERE video_id = 'faceforensics/manipulated_sequences/Deepfakes/c23/videos/001_000.mp4'")
    assert row.identity[0] == "001" and list(row.source_ids[0]) == ["001", "000"] and not row.synthetic[0]
    kinds = store.df("SELECT kind, count(*) AS n FROM catalog_problems GROUP BY kind")
    assert dict(zip(kinds.kind, kinds.n))["split_conflict"] == 4  # filed under both claiming databases
    # recording again replaces (no growth); a smaller config's database keeps the others' rows
    catalog.record(store, catalog.collect(cfg), cfg)
    assert store.scalar("SELECT count(*) FROM videos") == n
    assert store.scalar("SELECT count(*) FROM catalog_problems WHERE kind = 'split_conflict'") == 4
    (dfr / "manipulated_videos" / "end_to_end_level_2").rename(tmp_path / "gone")
    catalog.record(store, catalog.collect(cfg, ["deeperforensics"]), cfg)
    assert store.scalar("SELECT count(*) FROM videos WHERE method = 'end_to_end_level_2'") == 0
    assert store.scalar("SELECT count(*) FROM videos WHERE database = 'faceforensics'") > 0


def test_interrupted_record_leaves_previous_catalog(tmp_path, trees, monkeypatch):
    ff, dfr, _ = trees
    cfg = ff_dfr_config(tmp_path, ff, dfr)
    store = Store(tmp_path / "a.duckdb")
    catalog.record(store, catalog.collect(cfg), cfg)
    before = store.df("SELECT video_id, split FROM videos ORDER BY 1")
    n_ds = store.scalar("SELECT count(*) FROM datasets")
    (ff / "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4").unlink()  # the next scan differs
    real_insert = Store.insert

    def failing(self, table, data, replace=False, con=None):
        if table == "datasets":
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write
        return real_insert(self, table, data, replace=replace, con=con)

    monkeypatch.setattr(Store, "insert", failing)
    with pytest.raises(KeyboardInterrupt):
        catalog.record(store, catalog.collect(cfg), cfg)
    monkeypatch.setattr(Store, "insert", real_insert)
    assert store.df("SELECT video_id, split FROM videos ORDER BY 1").equals(before)
    assert store.scalar("SELECT count(*) FROM datasets") == n_ds
    catalog.record(store, catalog.collect(cfg), cfg)  # and the uninterrupted write does change it
    assert store.scalar("SELECT count(*) FROM videos") == len(before) - 1


def test_record_videos_helper_for_other_sets(tmp_path):
    store = Store(tmp_path / "a.duckdb")
    recs = [VideoRecord("unknown", "mobio", tmp_path / f"{i}.mp4", f"{i}.mp4", None, None) for i in range(3)]
    assert catalog.record_videos(store, recs, role="unknown", synthetic=True, source=str(tmp_path)) == 3
    assert catalog.record_videos(store, recs[:2], role="unknown", synthetic=True) == 2
    assert store.scalar("SELECT count(*) FROM videos WHERE dataset = 'unknown/mobio'") == 2
    row = store.df("SELECT role, labelled, synthetic FROM datasets WHERE dataset = 'unknown/mobio'")
    assert row.role[0] == "unknown" and not row.labelled[0] and row.synthetic[0]


def test_record_catalog_entry_used_by_faces(tmp_path, trees, workspace):
    ff, dfr, _ = trees
    cfg = ff_dfr_config(tmp_path, ff, dfr)
    report = catalog.record_catalog(cfg, workspace, databases=["dfd"])
    assert [s.name for s in report.scans] == ["dfd"]
    assert workspace.store().scalar("SELECT count(*) FROM videos") == 5


def test_store_readers_of_recorded_videos(tmp_path, trees):
    from engine.store.catalog import databases_recorded, video_rows

    ff, dfr, _ = trees
    cfg = ff_dfr_config(tmp_path, ff, dfr)
    store = Store(tmp_path / "a.duckdb")
    report = catalog.collect(cfg)
    catalog.record(store, report, cfg)
    assert databases_recorded(store, ["faceforensics", "dfd", "celebdf"]) == 2
    assert databases_recorded(store, []) == 0
    every = video_rows(store)
    assert every.column_names == ["video_id", "path", "true_class", "dataset", "frames", "face_crops"]
    assert every.column("video_id").to_pylist() == sorted(r.video_id for r in report.records)
    val = video_rows(store, ["faceforensics"], split="val").to_pylist()
    assert val and {r["dataset"] for r in val} == {"faceforensics/val"}
    assert video_rows(store, dataset="dfd/test").num_rows == len(report.scan("dfd").records)


def test_paper_config_loads_with_every_adapter():
    cfg = load_config(ROOT / "configs" / "paper.toml")
    adapters = {n: s.adapter for n, s in cfg.sources.databases.items()}
    assert adapters == {"faceforensics": "faceforensics", "celebdf": "celebdf", "hififace": "hififace",
                        "deeperforensics": "deeperforensics", "dfd": "google_dfd",
                        "deepfaketimit": "deepfaketimit", "dfmobio": "generic"}
    assert cfg.source("deeperforensics").options["ff_root"] == "/data/FaceForensics++"


def test_videos_kept_once_stay_members_of_every_claiming_test_set(tmp_path, trees):
    ff, dfr, hifi = trees
    cfg = ff_dfr_config(tmp_path, ff, dfr, hifi)
    report = catalog.collect(cfg)
    hs = report.scan("hififace")
    assert hs.counts()["test"] == {"hififace": 2} and len(hs.shared) == 5  # its 5 reals are FF++'s
    store = Store(tmp_path / "a.duckdb")
    catalog.record(store, report, cfg)
    row = store.df("SELECT also_in FROM videos WHERE video_id = 'faceforensics/original_sequences/youtube/c23/videos/008.mp4'")
    assert list(row.also_in[0]) == ["deeperforensics/test", "hififace/test"]
    members = store.df("SELECT v.true_class, count(*) AS n FROM video_datasets d JOIN videos v USING (video_id) "
                       "WHERE d.dataset = 'hififace/test' GROUP BY ALL")
    assert dict(zip(members.true_class, members.n)) == {"hififace": 2, "real": 2}
    # a conflict moves the video: DFR's 002 (test) is not also a member of faceforensics/train
    row = store.df("SELECT dataset, also_in IS NULL AS alone FROM videos WHERE relpath LIKE '%/002.mp4'")
    assert row.dataset.tolist() == ["deeperforensics/test"] and row.alone[0]


def test_symlinked_file_in_another_database_is_the_same_video(tmp_path):
    ff = make_ff(tmp_path / "ff", methods=("Deepfakes",))
    other = tmp_path / "mobio"
    (other / "real").mkdir(parents=True)
    (other / "real" / "x.mp4").symlink_to(ff / "original_sequences/youtube/c23/videos/009.mp4")
    touch(other / "fake" / "y.mp4")
    cfg = load_config(write_config(tmp_path, ["faceforensics"], ["mobio"],
                                   f'[sources.faceforensics]\nroot = "{ff}"\nmethods = "Deepfakes"\n'
                                   f'[sources.mobio]\nadapter = "generic"\nroot = "{other}"\n'))
    report = catalog.collect(cfg)
    (dup,) = report.duplicates
    assert not dup.conflict and dup.kept == "faceforensics/original_sequences/youtube/c23/videos/009.mp4"
    assert dup.also_in == ["mobio/test"]
    assert report.scan("mobio").counts() == {"test": {"unseen-fake": 1}}


def test_partial_collect_still_deduplicates_against_the_other_databases(tmp_path, trees):
    ff, dfr, _ = trees
    cfg = ff_dfr_config(tmp_path, ff, dfr)
    store = Store(tmp_path / "a.duckdb")
    catalog.record(store, catalog.collect(cfg), cfg)
    full = store.df("SELECT video_id, dataset FROM videos ORDER BY 1")
    n_problems = store.scalar("SELECT count(*) FROM catalog_problems")
    part = catalog.collect(cfg, ["deeperforensics"])
    assert [s.name for s in part.scans] == ["deeperforensics"]
    assert len(part.duplicates) == 4  # DFR's four reals, all claimed by FF++ too
    catalog.record(store, part, cfg)
    assert store.df("SELECT video_id, dataset FROM videos ORDER BY 1").equals(full)
    assert store.scalar("SELECT count(*) FROM catalog_problems") == n_problems
    # a context database that cannot be scanned is a problem, not an error
    import shutil
    shutil.rmtree(ff / "original_sequences" / "actors")
    shutil.rmtree(ff / "manipulated_sequences" / "DeepFakeDetection")
    part = catalog.collect(cfg, ["faceforensics"])
    assert any(p.kind == "not_checked" and "'dfd'" in p.message for p in part.scan("faceforensics").result.problems)
    with pytest.raises(Exception, match="no videos found for database 'dfd'"):
        catalog.collect(cfg, ["dfd"])
