"""The store's schema: one migration per version, applied in order by `Store`."""

# Each migration takes the store from version N-1 to N, inside one transaction.
# Add new ones at the end; never edit one that has shipped.

_V1 = """
CREATE TABLE videos (
    video_id     VARCHAR PRIMARY KEY,  -- <database>/<relpath>
    database     VARCHAR NOT NULL,
    split        VARCHAR NOT NULL,     -- train / val / test, or the unknown set's name
    dataset      VARCHAR NOT NULL,     -- <database>/<split> or unknown/<name>
    relpath      VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,     -- absolute path when scanned
    true_class   VARCHAR,              -- taxonomy id, 'unseen-fake', NULL when unlabelled
    is_fake      BOOLEAN,              -- NULL when unlabelled
    identity     VARCHAR,
    method       VARCHAR,
    source_ids   VARCHAR[],
    synthetic    BOOLEAN NOT NULL DEFAULT false,
    also_in      VARCHAR[],            -- other datasets claiming this same file in the same split (kept once)
    scanned_at   TIMESTAMP DEFAULT current_timestamp
);
-- Dataset membership including videos kept once for several databases
-- (FF++ originals that are also HifiFace / DeeperForensics reals).
CREATE VIEW video_datasets AS
    SELECT video_id, dataset FROM videos
    UNION ALL
    SELECT video_id, unnest(also_in) AS dataset FROM videos WHERE also_in IS NOT NULL;
CREATE TABLE datasets (
    dataset      VARCHAR PRIMARY KEY,
    database     VARCHAR NOT NULL,
    split        VARCHAR NOT NULL,
    role         VARCHAR NOT NULL,     -- superset / cross_db / unknown
    labelled     BOOLEAN NOT NULL DEFAULT true,
    synthetic    BOOLEAN NOT NULL DEFAULT false,
    source       VARCHAR,              -- root folder or manifest it came from
    created_at   TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE catalog_problems (
    database     VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,
    path         VARCHAR,
    message      VARCHAR NOT NULL,
    recorded_at  TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE face_settings (
    settings_key VARCHAR PRIMARY KEY,  -- short hash of the face-extraction settings
    params_json  VARCHAR NOT NULL,
    created_at   TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE face_videos (             -- one status row per video and settings key
    video_id     VARCHAR NOT NULL,
    settings_key VARCHAR NOT NULL,
    status       VARCHAR NOT NULL,     -- ok / no_face / unreadable / too_short / error
    reason       VARCHAR,
    n_frames     INTEGER,              -- frames the container reports
    n_sampled    INTEGER,
    n_faces      INTEGER,
    width        INTEGER,
    height       INTEGER,
    fps          DOUBLE,
    decode_s     DOUBLE,
    detect_s     DOUBLE,
    finished_at  TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (video_id, settings_key)
);
CREATE TABLE faces (
    face_id      VARCHAR PRIMARY KEY,  -- <video_id>#<frame>@<settings_key>
    video_id     VARCHAR NOT NULL,
    settings_key VARCHAR NOT NULL,
    frame_index  INTEGER NOT NULL,
    crop_path    VARCHAR NOT NULL,     -- relative to the workspace
    thumbnail    BLOB,                 -- JPEG, <= 64 px
    box_x        DOUBLE,               -- detection box, frame pixels
    box_y        DOUBLE,
    box_w        DOUBLE,
    box_h        DOUBLE,
    score        DOUBLE,
    detector     VARCHAR               -- model and tiling that found it
);
CREATE TABLE runs (
    run_id        VARCHAR PRIMARY KEY, -- <approach>-<hash>
    approach      VARCHAR NOT NULL,
    backbone      VARCHAR NOT NULL,
    config_json   VARCHAR NOT NULL,
    config_hash   VARCHAR,
    classes       VARCHAR[] NOT NULL,  -- taxonomy order used by this run
    taxonomy_json VARCHAR,
    settings_key  VARCHAR,             -- face settings the run trained on
    embedding_dim INTEGER,
    pretrained_source VARCHAR,         -- e.g. 'timm:imagenet', 'file:/x.pth', 'random init (offline)'
    seed          INTEGER,
    status        VARCHAR NOT NULL,    -- created / training / finished / failed
    message       VARCHAR,
    best_epoch    INTEGER,
    epochs_done   INTEGER,
    synthetic     BOOLEAN NOT NULL DEFAULT false,
    train_seconds DOUBLE,
    timings_json  VARCHAR,
    code_revision VARCHAR,
    versions_json VARCHAR,
    created_at    TIMESTAMP DEFAULT current_timestamp,
    updated_at    TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE epochs (
    run_id       VARCHAR NOT NULL,
    epoch        INTEGER NOT NULL,
    train_loss   DOUBLE,
    val_loss     DOUBLE,
    val_accuracy DOUBLE,
    seconds      DOUBLE,
    images_per_s DOUBLE,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE embeddings (
    run_id       VARCHAR NOT NULL,
    face_id      VARCHAR NOT NULL,
    dataset      VARCHAR NOT NULL,
    embedding    FLOAT[] NOT NULL,     -- the run's embedding_dim
    PRIMARY KEY (run_id, face_id)
);
CREATE TABLE classifiers (
    run_id       VARCHAR NOT NULL,
    classifier   VARCHAR NOT NULL,     -- native / knn / lr / svm
    params_json  VARCHAR NOT NULL,
    fitted_on    VARCHAR,              -- dataset(s) it was fitted on
    n_fit        INTEGER,
    selection_json VARCHAR,            -- model-selection scores, when used
    fitted_at    TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (run_id, classifier)
);
CREATE TABLE predictions (
    run_id       VARCHAR NOT NULL,
    classifier   VARCHAR NOT NULL,
    face_id      VARCHAR NOT NULL,
    dataset      VARCHAR NOT NULL,
    pred_class   INTEGER,              -- index into runs.classes; -1 = 'fake' without attribution (binary)
    real_score   DOUBLE NOT NULL,      -- higher = more real
    probs        FLOAT[],              -- class probabilities in runs.classes order
    out_of_fold  BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, classifier, face_id)
);
CREATE TABLE projections (
    projection_id VARCHAR PRIMARY KEY, -- hash of (run, reference, params, seed)
    run_id       VARCHAR NOT NULL,
    reference    VARCHAR NOT NULL,     -- dataset(s) the map was fitted on
    params_json  VARCHAR NOT NULL,
    seed         INTEGER NOT NULL,
    kl_divergence DOUBLE,
    created_at   TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE projection_points (
    projection_id VARCHAR NOT NULL,
    dataset      VARCHAR NOT NULL,
    face_id      VARCHAR NOT NULL,
    x            DOUBLE NOT NULL,
    y            DOUBLE NOT NULL,
    is_reference BOOLEAN NOT NULL,
    PRIMARY KEY (projection_id, face_id)
);
CREATE TABLE jobs (
    job_id       VARCHAR PRIMARY KEY,
    kind         VARCHAR NOT NULL,     -- analyze / faces / ...
    status       VARCHAR NOT NULL,     -- queued / running / finished / failed
    progress     DOUBLE NOT NULL DEFAULT 0,
    message      VARCHAR,
    params_json  VARCHAR,
    pid          INTEGER,
    started_at   TIMESTAMP DEFAULT current_timestamp,
    updated_at   TIMESTAMP DEFAULT current_timestamp,
    finished_at  TIMESTAMP
);
"""

# Frames as input (issue 18): a video given as still images lists them (a frame folder, DeepfakeBench's
# frames, one image given alone); DeepfakeBench's are already face crops. An analysed set's input
# problems (files not used, with the reason) are kept with the set, so the dashboard shows them too.
_V2 = """
ALTER TABLE videos ADD COLUMN frames VARCHAR[];      -- its image files in order (stored text); NULL: a video file
ALTER TABLE videos ADD COLUMN face_crops BOOLEAN DEFAULT false;  -- its frames are already face crops
ALTER TABLE catalog_problems ADD COLUMN dataset VARCHAR;  -- the unknown set an input problem belongs to
"""

# v3: chain of custody of analysed sets — each input file's name as the user gave it (an upload's
# own name, in any script; the name on disk is videos.relpath) and its SHA-256 when it was analysed.
_V3 = """
CREATE TABLE video_files (
    video_id      VARCHAR PRIMARY KEY,  -- videos.video_id
    original_name VARCHAR NOT NULL,     -- the name the user gave the file (uploads: before sanitising)
    sha256        VARCHAR,              -- hex digest of the file's bytes when the set was recorded
    size_bytes    BIGINT,
    note          VARCHAR,              -- why there is no digest (not a regular file, no permission, ...)
    hashed_at     TIMESTAMP DEFAULT current_timestamp
);
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3]
SCHEMA_VERSION = len(MIGRATIONS)
