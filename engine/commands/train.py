"""`dfatlas train`: train one approach (or all four) on the training super-set."""

from __future__ import annotations

from data_catalog.errors import AtlasError

from ..approaches import approach_names
from ..config import Range, TrainSection
from .common import (add_config_arg, add_parser, add_wait_arg, add_workspace_arg, config_of, number_arg, option_arg,
                     print_table, workspace_of)


def register(sub) -> None:
    p = add_parser(
        sub, "train", "train a detector: binary, attribution, triplet or arcfacemod head on a timm backbone",
        "dfatlas train --config configs/demo.toml --approach attribution",
        description=(
            "Train one approach on the faces of the training super-set (run `dfatlas faces` first).\n"
            "The run id is <approach>-<hash of the training config>: running the same command again\n"
            "resumes an interrupted run from its last epoch, and a finished run is a cache hit\n"
            "(--retrain trains it anew, e.g. after `analyze` found its checkpoint damaged).\n"
            "Multi-GPU: --ddp N, or `torchrun --nproc_per_node=N -m engine.training --config ... --approach ...`."
        ),
    )
    add_config_arg(p)
    add_workspace_arg(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--approach", choices=approach_names(trainable_only=True), help="which head and loss to train")
    what.add_argument("--all", action="store_true", help="train every approach in sequence (the paper's four)")
    p.add_argument("--backbone", metavar="NAME", help="override [model] backbone (any timm model name)")
    p.add_argument("--epochs", type=option_arg(TrainSection, "epochs"), metavar="N", help="override [train] epochs")
    p.add_argument("--resume", action="store_true", help="only resume an existing run (error if there is none)")
    p.add_argument("--retrain", action="store_true",
                   help="train the run anew even if it finished (a damaged checkpoint, an unwanted result): its "
                        "folder is moved to runs/.replaced/ and its embeddings, predictions and maps are dropped")
    p.add_argument("--discard-old", action="store_true",
                   help="with --retrain: delete the earlier run folder instead of moving it aside")
    p.add_argument("--ddp", type=number_arg(int, Range(0, 1024)), metavar="N", default=0,
                   help="data-parallel over N local processes (one per GPU; gloo on CPU)")
    add_wait_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training import apply_overrides, check_request, finished_result, retrain_run, run_ddp, train

    cfg = apply_overrides(config_of(args), args.backbone, args.epochs)
    approaches = list(approach_names(trainable_only=True)) if args.all else [args.approach]
    for a in approaches:  # bad input before anything starts
        check_request(cfg, a)
    if args.resume and args.retrain:
        raise AtlasError("--resume and --retrain contradict each other: --retrain starts the run anew")
    if args.discard_old and not args.retrain:
        raise AtlasError("--discard-old only goes with --retrain")
    ws = workspace_of(args).ensure()
    rows = []
    with ws.lock(f"train {'all' if args.all else args.approach}", wait=args.wait):
        for a in approaches:
            if args.ddp > 1:
                if args.retrain:
                    retrain_run(ws, cfg.run_id(a), args.discard_old)
                run_ddp(args.config, a, ws, args.ddp, backbone=args.backbone, epochs=args.epochs,
                        resume_only=args.resume)
                rows.append(finished_result(ws, cfg.run_id(a)).summary() | {"ranks": args.ddp})
            else:
                res = train(cfg, a, ws, resume_only=args.resume, retrain=args.retrain, discard_old=args.discard_old)
                rows.append(res.summary())
    print_table(rows)
    return 0
