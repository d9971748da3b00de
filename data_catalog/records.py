"""What one video is, as every database adapter reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .names import path_to_text

SPLITS = ("train", "val", "test")
UNSEEN_FAKE = "unseen-fake"
REAL = "real"


@dataclass(frozen=True)
class VideoRecord:
    """One video of one database, in its published layout.

    `relpath` is POSIX-style and relative to the database root, as the file
    system names it (a surrogate-escaped str for bytes that are not UTF-8);
    `video_id` is `database` + its stored text (`data_catalog.names.path_to_text`),
    the identifier (docs/ARCHITECTURE.md "Identifiers").
    `true_class` is a taxonomy class id, or `unseen-fake` for fakes made by a
    method the taxonomy does not know (or `None` for unlabelled videos).
    `method` names the generating method whenever the database says it, also
    for unseen fakes, so attribution of unknown sets can be checked later.

    A video given as still images (a frame folder, a DeepfakeBench video, one image given alone) lists
    them in `frames`, in their order (`data_catalog.names.natural_key`); its `path` is then the folder
    holding them (the image itself for a one-frame video). `face_crops`: its frames are already face
    crops (DeepfakeBench's), which face extraction may take as they are (`[faces] pre_cropped`).
    """

    database: str
    split: str
    path: Path
    relpath: str
    true_class: str | None
    is_fake: bool | None
    identity: str = ""
    method: str = ""
    source_ids: tuple[str, ...] = field(default_factory=tuple)
    frames: tuple[Path, ...] = field(default_factory=tuple)
    face_crops: bool = False

    @property
    def video_id(self) -> str:
        return f"{self.database}/{path_to_text(self.relpath)}"

    @property
    def dataset(self) -> str:
        return f"{self.database}/{self.split}"


def to_is_real(is_fake):
    """Records carry `is_fake`; metrics take `is_real`. This is the one converter.

    Accepts a bool, a NumPy array or a pandas Series; `None`/NA stays unknown
    for scalars. Real is the positive class (biometrics convention).
    """
    if is_fake is None:
        return None
    if isinstance(is_fake, bool):
        return not is_fake
    import numpy as np

    return ~np.asarray(is_fake, dtype=bool)
