"""`dfatlas models`: fetch and show the model files the pipeline needs, ahead of time."""

from __future__ import annotations

from .common import add_parser, print_table


def register(sub) -> None:
    p = add_parser(
        sub, "models", "fetch or show model files (BlazeFace face detectors, the face-landmark check)",
        "dfatlas models fetch",
        description=(
            "Resolve the BlazeFace face-detector models and the face-landmark model that\n"
            "confirms small faces now, so later runs work offline: explicit file\n"
            "($DFATLAS_BLAZEFACE / $DFATLAS_BLAZEFACE_FULL / $DFATLAS_FACE_LANDMARK), the user\n"
            "cache, the official MediaPipe download, or the mediapipe==0.10.21 wheel via pip."
        ),
    )
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    f = msub.add_parser("fetch", help="resolve and cache the face models")
    f.add_argument("--model", choices=("short_range", "full_range", "face_landmark", "all"), default="all")
    f.add_argument("--no-download", action="store_true", help="skip the official download (wheel via pip only)")
    f.set_defaults(func=fetch)
    s = msub.add_parser("show", help="show which model files are available and where from (no network)")
    s.set_defaults(func=show)


def fetch(args) -> int:
    from engine.faces.model_files import MODELS, resolve_models

    names = list(MODELS) if args.model == "all" else [args.model]
    found = resolve_models(names, allow_download=not args.no_download)
    print_table([{"model": n, "source": m.source, "sha256": m.sha256[:16] + "...", "path": m.path}
                 for n, m in found.items()])
    return 0


def show(args) -> int:
    from engine.faces.model_files import MODELS, ModelUnavailable, cache_dir, resolve_model

    rows = []
    for n in MODELS:
        try:
            m = resolve_model(n, allow_download=False, allow_wheel=False)
            rows.append({"model": n, "source": m.source, "path": m.path})
        except ModelUnavailable:
            rows.append({"model": n, "source": "missing", "path": f"(run `dfatlas models fetch`; cache {cache_dir()})"})
    print_table(rows)
    return 0
