"""An embedding file as `dfatlas import-embeddings` reads it: Parquet (what `dfatlas export` writes) or
NumPy `.npz` (loaded without pickle: text columns must be unicode arrays), checked, and turned into the
store's rows (videos, faces) by `engine.embedding_import`.

One row per face (when the file has `frame_index` or `face_id`) or per video:

    video_id      text, required   the video; several rows per video = its frames
    label         text, required   real / fake (empty: unlabelled)
    split         text             train / val / test (required for a run; ignored for an unknown set)
    embedding     floats, required one width for every row (.npz: a 2-D array)
    database      text             default --database (a run's super-set and cross-db sets are databases)
    true_class    text             the class (a taxonomy id); default real / fake
    identity      text             the person (cross-validation folds never split one)
    source_ids    list of text     other people or source videos it is made from (same use)
    frame_index   integer          the frame (per-face files)
    face_id       text             the face's id (default <video_id>#<frame_index>@<import key>)
    role          text             superset / cross_db / unknown (default: databases with val rows
                                   are the super-set, the others cross-database sets)
    method, also_in, synthetic     as `dfatlas export` writes them (optional)

`dfatlas export` also writes the run's classes, taxonomy, [classifiers] / [projection] sections and the
requests its classifiers were fitted with into the Parquet file's metadata (key `dfatlas`), so an import
of an export refits the same classifiers on the same rows.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_catalog.errors import AtlasError
from data_catalog.names import printable
from data_catalog.records import REAL

from .store import Store, arrow_to_matrix, matrix_to_arrow

METADATA_KEY = b"dfatlas"          # Parquet schema metadata: classes, taxonomy, sections (written by the export)
NPZ_METADATA = "dfatlas_metadata"  # the same JSON as a 0-d unicode array in an .npz
FORMAT = 1
REQUIRED = ("video_id", "label", "embedding")
TEXT = ("video_id", "label", "split", "database", "true_class", "identity", "face_id", "role", "method")
LISTS = ("source_ids", "also_in")
ROLES = ("superset", "cross_db", "unknown")
DEFAULT_DATABASE = "external"


@dataclass
class EmbeddingFile:
    """An embedding file read and checked: one row per face (or video), the matrix, and the file's facts."""
    path: Path
    rows: pd.DataFrame          # the columns above (text as object, None when missing), in file order
    embedding: np.ndarray       # [N, d] float32
    granularity: str            # 'face' or 'video'
    sha256: str
    metadata: dict = field(default_factory=dict)  # the export's metadata, when present

    @property
    def dim(self) -> int:
        return int(self.embedding.shape[1])


# --- reading ---------------------------------------------------------------------------

def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_parquet(path: Path) -> tuple[pa.Table, dict]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise AtlasError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:160]})") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    return table, _metadata(path, raw)


def _metadata(path: Path, raw) -> dict:
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
    except (TypeError, ValueError):
        raise AtlasError(f"{path}: its '{METADATA_KEY.decode()}' metadata is not JSON") from None
    return meta if isinstance(meta, dict) else {}


def _read_npz(path: Path) -> tuple[pa.Table, dict]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise AtlasError(f"{path}: holds object arrays, which load only through pickle (never done here): "
                             "save text columns as NumPy unicode arrays (np.asarray(values, dtype=str))") from None
        raise AtlasError(f"{path}: not a readable .npz file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise AtlasError(f"{path}: not a readable .npz file ({exc})") from None
    meta = _metadata(path, str(arrays.pop(NPZ_METADATA)) if NPZ_METADATA in arrays else None)
    emb = arrays.pop("embedding", None)
    if emb is None or emb.ndim != 2:
        raise AtlasError(f"{path}: needs a 2-D array 'embedding' (one row per face or video)")
    if not np.issubdtype(emb.dtype, np.number):
        raise AtlasError(f"{path}: 'embedding' must hold numbers, not {emb.dtype}")
    columns = {"embedding": matrix_to_arrow(emb.astype(np.float32))}
    for name, arr in arrays.items():
        if arr.ndim != 1 or len(arr) != len(emb):
            raise AtlasError(f"{path}: array {name!r} has shape {arr.shape}; every column needs one value per "
                             f"embedding row ({len(emb)})")
        columns[name] = pa.array(arr.tolist() if arr.dtype.kind in "US" else arr)
    return pa.table(columns), meta


def _text_column(table: pa.Table, name: str, path: Path) -> list | None:
    """A column as a list of str / None ('' counts as missing); None when the file lacks it."""
    if name not in table.column_names:
        return None
    col = table[name]
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
            col = pc.cast(col, pa.string())
        else:
            raise AtlasError(f"{path}: column {name!r} must be text, not {col.type}")
    values = col.to_pylist()
    return [v if v != "" else None for v in values]


def _list_column(table: pa.Table, name: str, path: Path) -> list | None:
    if name not in table.column_names:
        return None
    col = table[name]
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):  # CSV-style "a;b"
        return [[] if v is None or v == "" else v.split(";") for v in col.to_pylist()]
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        raise AtlasError(f"{path}: column {name!r} must be a list of text, not {col.type}")
    return [list(v) if v is not None else None for v in col.to_pylist()]


def _embedding_matrix(table: pa.Table, path: Path) -> np.ndarray:
    col = table["embedding"]
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    kind = col.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)) \
            or not (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise AtlasError(f"{path}: column 'embedding' must be a list of numbers per row, not {kind}")
    if col.null_count:
        first = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise AtlasError(f"{path}: row {first} has no embedding")
    if len(col) == 0:
        raise AtlasError(f"{path}: holds no rows")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False) if not pa.types.is_fixed_size_list(kind) \
        else np.full(len(col), kind.list_size)
    if (lengths != lengths[0]).any() or lengths[0] == 0:
        bad = int(np.flatnonzero(lengths != lengths[0])[0]) if (lengths != lengths[0]).any() else 0
        raise AtlasError(f"{path}: every embedding needs the same width; row 0 has {int(lengths[0])} values, "
                         f"row {bad} has {int(lengths[bad])}")
    X = arrow_to_matrix(col.cast(pa.list_(pa.float32())) if not pa.types.is_fixed_size_list(kind) else col)
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        raise AtlasError(f"{path}: row {int(np.flatnonzero(~finite)[0])} has a NaN or infinite embedding value")
    return np.ascontiguousarray(X, dtype=np.float32)


def read_embedding_file(path: str | Path) -> EmbeddingFile:
    """Read and check an embedding file (Parquet or .npz); a bad file is one clear error naming the problem."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise AtlasError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        table, meta = _read_parquet(path)
    elif suffix == ".npz":
        table, meta = _read_npz(path)
    else:
        raise AtlasError(f"{path}: expected a Parquet (.parquet) or NumPy (.npz) file of embeddings")
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise AtlasError(f"{path}: missing column(s) {', '.join(missing)} (needed: {', '.join(REQUIRED)}; "
                         "see README 'Exports and any detector's embeddings')")
    X = _embedding_matrix(table, path)
    n = len(X)
    rows = pd.DataFrame({c: _text_column(table, c, path) or [None] * n for c in TEXT}, dtype=object)
    for c in LISTS:
        values = _list_column(table, c, path)
        rows[c] = pd.Series(values if values is not None else [None] * n, dtype=object)
    rows["synthetic"] = (pc.fill_null(table["synthetic"], False).to_numpy(zero_copy_only=False).astype(bool)
                         if "synthetic" in table.column_names else np.zeros(n, bool))
    per_face = "frame_index" in table.column_names or "face_id" in table.column_names
    if "frame_index" in table.column_names:
        fi = table["frame_index"]
        if not pa.types.is_integer(fi.type) or fi.null_count:
            raise AtlasError(f"{path}: column 'frame_index' must hold an integer on every row")
        rows["frame_index"] = fi.to_numpy().astype(np.int64)
    else:
        rows["frame_index"] = None
    _check_values(rows, path)
    return EmbeddingFile(path, rows, X, "face" if per_face else "video", _file_digest(path), meta)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_values(rows: pd.DataFrame, path: Path) -> None:
    if rows["video_id"].isna().any():
        raise AtlasError(f"{path}: row {_first(rows['video_id'].isna().to_numpy())} has no video_id")
    label = rows["label"].str.strip().str.lower()
    bad = label.notna() & ~label.isin(["real", "fake"])
    if bad.any():
        i = _first(bad.to_numpy())
        raise AtlasError(f"{path}: row {i}: label must be 'real' or 'fake' (or empty: unlabelled), "
                         f"got {printable(rows['label'].iloc[i])!r}")
    rows["label"] = label
    tc = rows["true_class"]
    clash = ((label == "fake") & (tc == REAL)) | ((label == "real") & tc.notna() & (tc != REAL))
    if clash.any():
        i = _first(clash.to_numpy())
        raise AtlasError(f"{path}: row {i}: label {label.iloc[i]!r} contradicts true_class {printable(tc.iloc[i])!r}")
    bad_role = rows["role"].notna() & ~rows["role"].isin(ROLES)
    if bad_role.any():
        i = _first(bad_role.to_numpy())
        raise AtlasError(f"{path}: row {i}: role must be one of {', '.join(ROLES)}, got {printable(rows['role'].iloc[i])!r}")


# --- rows as the store keeps them ---------------------------------------------------------

def store_rows(f: EmbeddingFile, database_default: str, unknown: str | None = None) -> pd.DataFrame:
    """The file's rows with database, split, dataset, video ids (`<database>/<relpath>`), is_fake, true_class
    and frame_index filled in; `unknown`: every row belongs to the unknown set of that name."""
    from .analysis.paths import UNKNOWN_DB

    rows = f.rows.copy()
    if unknown is not None:
        rows["database"], rows["split"], rows["role"] = UNKNOWN_DB, unknown, "unknown"
    else:
        rows["database"] = rows["database"].fillna(database_default)
    vid = rows["video_id"].astype(str)
    db = rows["database"].astype(str)
    within = (unknown + "/") if unknown is not None else ""
    relpath = within + vid
    for name in db.unique():  # one vectorised pass per database (a handful)
        mine = (db == name).to_numpy()
        given = vid[mine]
        prefixed = given.str.startswith(f"{name}/{within}")  # already `<database>/<relpath>`
        relpath[mine] = np.where(prefixed, given.str.slice(len(name) + 1), relpath[mine])
    rows["relpath"] = relpath
    rows["video_id"] = db + "/" + rows["relpath"]
    rows["is_fake"] = rows["label"].map({"fake": True, "real": False})
    rows["true_class"] = rows["true_class"].where(rows["true_class"].notna(),
                                                  rows["label"].map({"real": REAL, "fake": "fake"}))
    if f.granularity == "video":
        dup = rows["video_id"].duplicated()
        if dup.any():
            raise AtlasError(f"{f.path}: video {printable(rows['video_id'][dup].iloc[0])!r} has several rows; give "
                             "frame_index (one row per face) or one row per video")
        rows["frame_index"] = 0
    elif rows["frame_index"].isna().all():
        rows["frame_index"] = rows.groupby("video_id", sort=False).cumcount()
    rows["frame_index"] = rows["frame_index"].astype(np.int64)
    for col in ("database", "split", "label", "true_class"):
        varies = rows.groupby("video_id", sort=False)[col].nunique(dropna=False) > 1
        if varies.any():
            raise AtlasError(f"{f.path}: the rows of video {printable(varies[varies].index[0])!r} disagree on {col}")
    if unknown is None and rows["split"].isna().any():
        raise AtlasError(f"{f.path}: row {_first(rows['split'].isna().to_numpy())} has no split "
                         "(train / val / test; a run is fitted on its super-set's val rows)")
    rows["dataset"] = rows["database"].astype(str) + "/" + rows["split"].astype(str)
    if unknown is not None:
        rows["dataset"] = UNKNOWN_DB + "/" + unknown
    return rows


def face_ids_of(f: EmbeddingFile, rows: pd.DataFrame, settings_key: str) -> pa.Array:
    from .store.faces import face_ids as build

    made = build(pa.array(rows["video_id"].astype(str).tolist(), pa.string()), rows["frame_index"].to_numpy(),
                    settings_key)
    if rows["face_id"].notna().any():
        given = pa.array(rows["face_id"].tolist(), pa.string())
        made = pc.if_else(pc.is_valid(given), given, made)
    ids = made.to_numpy(zero_copy_only=False)
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        raise AtlasError(f"{f.path}: face {printable(ids[_first(dup)])!r} appears twice (face_id, or video_id and "
                         "frame_index, must be unique)")
    return made


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Equal values, or missing on both sides (whatever pandas dtype each side has)."""
    def text(x: pd.Series) -> np.ndarray:
        return x.astype(object).where(x.notna(), "\u2400").astype(str).to_numpy()  # ␀: the missing marker

    return text(a) == text(b)


def check_against_store(store: Store, f: EmbeddingFile, rows: pd.DataFrame, face_ids: pa.Array) -> int:
    """Videos and faces the store already records must be the same ones (same labels, split and video);
    returns how many of the faces it records (an export imported into its own workspace: all)."""
    from .store import interchange

    videos = rows.drop_duplicates("video_id").set_index("video_id")
    known = interchange.known_videos(store, videos.index)
    if len(known):
        known = known.set_index("video_id")
        mine = videos.loc[known.index]
        same = np.logical_and.reduce([_same(mine[c], known[c]) for c in ("database", "split", "true_class", "is_fake")])
        same = pd.Series(same, index=known.index)
        if not same.all():
            vid = same[~same].index[0]
            k, m = known.loc[vid], mine.loc[vid]
            raise AtlasError(f"{f.path}: {int((~same).sum())} video(s) are recorded in this store with other labels "
                             f"or splits, e.g. {printable(vid)!r}: stored {k['split']}/{k['true_class']}, file "
                             f"{m['split']}/{m['true_class']} (import them under another --database name)")
    faces = interchange.known_faces(store, face_ids.to_pylist())
    if len(faces):
        want = dict(zip(face_ids.to_pylist(), rows["video_id"]))
        other = faces.loc[faces["video_id"].to_numpy() != faces["face_id"].map(want).to_numpy()]
        if len(other):
            raise AtlasError(f"{f.path}: face {printable(other['face_id'].iloc[0])!r} is recorded in this store for "
                             f"another video ({printable(other['video_id'].iloc[0])!r})")
    return len(faces)


def videos_table(rows: pd.DataFrame, source: str) -> pa.Table:
    """`videos` rows of the file's videos through the catalog's own builder (`engine.store.catalog.videos_table`:
    one record per video, as any adapter yields them); their path names the import (`import:<file>`)."""
    from data_catalog.records import VideoRecord

    from .store.catalog import videos_table as build

    v = rows.drop_duplicates("video_id").astype(object).where(lambda d: d.notna(), None)
    records = [VideoRecord(database=db, split=sp, path=Path(source), relpath=rel, true_class=tc, is_fake=fake,
                           identity=ident or "", method=meth or "", source_ids=tuple(src or ()))
               for db, sp, rel, tc, fake, ident, meth, src in
               zip(v["database"], v["split"], v["relpath"], v["true_class"], v["is_fake"], v["identity"],
                   v["method"], v["source_ids"])]
    also_in = {vid: list(a) for vid, a in zip(v["video_id"], v["also_in"]) if isinstance(a, list) and a}
    return build(records, synthetic=[bool(x) for x in v["synthetic"]], also_in=also_in)


def faces_table(rows: pd.DataFrame, face_ids: pa.Array, settings_key: str) -> pa.Table:
    from .store.faces import faces_table as build

    n = len(rows)
    table = build(settings_key, rows["video_id"].tolist(), rows["frame_index"].to_numpy(), [""] * n,
                        [None] * n, np.full((n, 4), np.nan), np.full(n, np.nan), ["imported"] * n)
    return table.set_column(0, "face_id", face_ids)


def statuses_table(rows: pd.DataFrame, settings_key: str) -> pa.Table:
    """One `face_videos` row per video: status ok, reason 'imported embeddings', its number of faces — so the
    analysis report and the extraction counts read an imported video as a video whose faces are known."""
    from .store.faces import face_videos_table

    n_faces = rows.groupby("video_id", sort=False).size()
    n = len(n_faces)
    none = [None] * n
    return face_videos_table(settings_key, n_faces.index.tolist(), ["ok"] * n, ["imported embeddings"] * n, none,
                             n_faces.tolist(), n_faces.tolist(), none, none, none, none, none)
