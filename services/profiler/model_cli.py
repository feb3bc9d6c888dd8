"""`apihub model`: train the risk model, export members' dispositions as labels, show an artefact, explain
manifests.

Training (services.profiler.training) runs offline on the synthetic history, optionally with disposition labels
from a file (`--labels`, written by `apihub model labels`); only `train --dispositions` and `labels` read the hub's
broker (settings from the APIHUB_* environment). The synthetic history is dev code (synthetic.history): `train`
runs from a source checkout and says so elsewhere. Training writes a new versioned artefact directory; the
profiler loads the one named by settings.model_path (services.profiler.model.load_configured). Output carries
counts and ids, never names or document numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from services.config import DEFAULT_LABEL_WEIGHT, MAX_LABEL_WEIGHT_SHARE

model_app = typer.Typer(
    help="The risk model (review ranking only): train, labels from dispositions, show, explain.", no_args_is_help=True
)

DEFAULT_OUT = Path(".apihub/models")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"apihub: {message}", err=True)
    raise typer.Exit(code)


def _settings():
    """HubSettings from the APIHUB_* environment, as the other commands read them."""
    from pydantic import ValidationError

    from services.config import HubSettings

    try:
        return HubSettings()
    except ValidationError as exc:
        problems = "; ".join(f"APIHUB_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        _fail(f"bad settings: {problems}")


def _read_from_hub():
    """Labels from the configured hub's dispositions, hits and manifests topics (exit 2 or 3 on failure)."""
    from kafka.errors import KafkaError

    from services.errors import HubError
    from services.profiler.labels import read_labels

    settings = _settings()
    try:
        return read_labels(settings), settings
    except HubError as exc:
        _fail(str(exc))
    except KafkaError as exc:
        _fail(f"could not read the hub's topics at {settings.bootstrap}: {exc}", 3)


def _print_report(report) -> None:
    typer.echo(
        f"dispositions read {report.dispositions} ({report.superseded} superseded by a later one of the same member, "
        f"{report.unlabelled} without a label); hits disposed {report.disposed_hits}, {report.conflicting} with "
        "members disagreeing (any positive outcome wins)"
    )
    if report.skipped or report.undecodable:
        typer.echo(
            f"  skipped {report.skipped}: {report.hit_missing} hits not on the hits topic, {report.manifest_missing} "
            f"manifests not on the manifests topic, {report.traveller_missing} travellers not found in their "
            f"manifest; {report.undecodable} undecodable records"
        )
    share = f"{report.positives / report.labels:.1%}" if report.labels else "-"
    typer.echo(f"labels {report.labels}, of interest {report.positives} ({share})")


def _print_evaluation(metadata: dict) -> None:
    evaluation = metadata["evaluation"]
    training = metadata["training"]
    typer.echo(f"model {metadata['version']}")
    typer.echo(
        f"  trained on {training['train_rows']} of {training['rows']} rows "
        f"({training['source']}, seed {training['seed']})"
    )
    typer.echo(
        f"  held out {evaluation['holdout_rows']} rows, {evaluation['holdout_positives']} of interest "
        f"(base rate {evaluation['base_rate']:.2%})"
    )
    typer.echo(f"  ROC AUC                      {evaluation['roc_auc']:.4f}")
    typer.echo(f"  precision at the top 1 %     {evaluation['precision_at_top_1pct']:.4f}")
    precision = evaluation["precision_at_default_threshold"]
    typer.echo(
        f"  at the default threshold {evaluation['default_threshold']:.2f}: "
        f"{evaluation['review_share_at_default_threshold']:.2%} of travellers put up for review, "
        f"precision {precision if precision is None else f'{precision:.4f}'}"
    )
    _print_dispositions(metadata.get("dispositions"))


def _number(value, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def _print_dispositions(section: dict | None) -> None:
    if not section or not section.get("labels"):
        typer.echo("  disposition labels: none (synthetic history only)")
        return
    weighting = section["weighting"]
    typer.echo(
        f"  disposition labels {section['labels']} ({section['positive_share']:.1%} of interest) from "
        f"{section.get('source') or 'the caller'}: {section['train_rows']} in training at weight "
        f"{weighting['per_row']:g} per row ({weighting['share_of_training_weight']:.2%} of the training weight)"
    )
    evaluation = section["evaluation"]
    if not evaluation.get("evaluated"):
        typer.echo(f"  not evaluated on dispositions: {evaluation.get('reason', '')}")
        return
    typer.echo(
        f"  on {evaluation['holdout_rows']} held-out disposition rows ({evaluation['holdout_positives']} of "
        f"interest): ROC AUC {_number(evaluation['roc_auc'])} (synthetic history alone "
        f"{_number(evaluation['synthetic_only_roc_auc'])}), at the default threshold precision "
        f"{_number(evaluation['precision_at_default_threshold'])}, recall "
        f"{_number(evaluation['recall_at_default_threshold'])}"
    )


def _synthetic_history():
    """synthetic.history, the generator training starts from: dev code, in a source checkout only (exit 2 with a
    message elsewhere)."""
    from services.checkout import DevCodeMissingError, import_dev

    try:
        return import_dev("synthetic.history", "apihub model train")
    except DevCodeMissingError as exc:
        _fail(str(exc))


@model_app.command("train")
def train_command(
    out: Annotated[Path, typer.Option("--out", help="Directory under which the versioned artefact is written")] = (
        DEFAULT_OUT
    ),
    rows: Annotated[int, typer.Option("--rows", min=1000, help="Rows of synthetic history to generate")] = 200_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the history and the split")] = 7,
    dispositions: Annotated[
        bool,
        typer.Option(
            "--dispositions",
            help="Also train on members' dispositions, read from the hub's broker (APIHUB_KAFKA_BOOTSTRAP, "
            "APIHUB_TOPIC_PREFIX)",
        ),
    ] = False,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Also train on a labels file (.parquet or .csv) written by `apihub model labels`: offline",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    label_weight: Annotated[
        float,
        typer.Option(
            "--label-weight",
            min=0.001,
            help="Sample weight of one disposition row against one synthetic row, lowered so that dispositions "
            f"carry at most {MAX_LABEL_WEIGHT_SHARE:.0%} of the training weight",
        ),
    ] = DEFAULT_LABEL_WEIGHT,
) -> None:
    """Generate the labelled synthetic history, train, evaluate on a held-out split, write the artefact.

    Runs from a source checkout: the synthetic history's generator (synthetic/) is not part of an installed hub.

    With --dispositions or --labels, members' dispositions of hits are added as labels (true_match,
    denied_boarding, refused_entry, secondary_positive: of interest; false_positive, secondary_negative: not;
    members disagreeing: any positive wins). They exist only for hits, so they are few and biased: they join
    the synthetic history with a sample weight (--label-weight), never replace it. With 50 or more, a quarter
    is held out and the model evaluated on them; the artefact's metadata records how many were used, their
    share of interest, the weighting and that evaluation.
    """
    if dispositions and labels is not None:
        _fail("give --dispositions or --labels, not both")
    history = _synthetic_history()  # first: before the topics are read
    frame = source = collection = None
    if dispositions:
        from services.profiler.labels import COMBINATION_RULE

        found, settings = _read_from_hub()
        _print_report(found.report)
        from services.bus import Topics

        frame, source = found.frame, f"topic {Topics(settings.topic_prefix).dispositions} ({settings.bootstrap})"
        collection = {"rule": COMBINATION_RULE, **found.report.as_dict()}
        if frame.is_empty():
            typer.echo("no disposition labels found: training on the synthetic history only", err=True)
    elif labels is not None:
        from services.profiler.labels import COMBINATION_RULE, LabelFileError, read_labels_file

        try:
            frame = read_labels_file(labels)
        except LabelFileError as exc:
            _fail(str(exc))
        source, collection = f"file {labels.name}", {"rule": COMBINATION_RULE}
    artefact = history.train_on_history(
        out,
        rows,
        seed,
        labels=frame,
        label_weight=label_weight,
        label_source=source,
        label_collection=collection,
    )
    _print_evaluation(dict(artefact.metadata))
    typer.echo(f"written to {artefact.path}")
    typer.echo(f"use it: APIHUB_MODEL_PATH={artefact.path}")


@model_app.command("labels")
def labels_command(
    out: Annotated[Path, typer.Option("--out", help="File to write: .parquet or .csv (the format follows the suffix)")],
) -> None:
    """Export members' dispositions as labelled feature rows (read from the hub's broker) for offline training.

    Train on the file with `apihub model train --labels FILE`.

    One row per disposed hit: its id, the decisive outcome, how many members disposed it and whether they
    disagreed (any positive outcome wins), what raised it, the model's input features recomputed from the
    hit's manifest by the profiler's own code, and the label. No names, birth dates, document numbers or
    nationalities. Hits whose record, manifest or traveller is no longer on the topics are skipped and counted.
    """
    from services.profiler.labels import LabelFileError, label_file_format, write_labels_file

    try:
        label_file_format(out)  # before reading the topics, which may take a while
    except LabelFileError as exc:
        _fail(str(exc))
    found, _ = _read_from_hub()
    _print_report(found.report)
    write_labels_file(found.frame, out)
    typer.echo(f"written to {out}")


@model_app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="Artefact directory (or its metadata.json)", exists=True)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON")] = False,
) -> None:
    """Print an artefact's metadata (version, features, evaluation, coefficients) and whether this code
    accepts it."""
    from services.profiler.model import ModelArtifactError, load_model, read_metadata

    try:
        metadata = read_metadata(path)
    except ModelArtifactError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(metadata, indent=2))
    else:
        try:
            _print_evaluation(metadata)
            typer.echo(f"  created {metadata['created']}, scikit-learn {metadata['sklearn_version']}")
            typer.echo(f"  features ({len(metadata['features'])}), log-odds per standard deviation:")
            for name, coef in metadata["coefficients"].items():
                typer.echo(f"    {name:<30} {coef:+.3f}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            typer.echo(f"model artefact {path}: not a model's metadata ({type(exc).__name__}: {exc})", err=True)
            raise typer.Exit(1) from None
    try:
        load_model(path)
    except ModelArtifactError as exc:
        typer.echo(f"REFUSED by this code: {exc}", err=True)
        raise typer.Exit(1) from None
    if not as_json:
        typer.echo("  accepted by this code (features and schema hash match)")


@model_app.command("explain")
def explain(
    path: Annotated[Path, typer.Argument(help="Artefact directory", exists=True)],
    manifests: Annotated[list[Path], typer.Argument(help="Manifest files (PAXLST or JSON)", exists=True)],
    top: Annotated[int, typer.Option("--top", help="Travellers to list, highest probability first")] = 10,
) -> None:
    """Rank the travellers of manifest files by model probability, with each one's top contributions.

    Travellers are named by manifest and position only.
    """
    import polars as pl

    from services.profiler.frames import add_features, manifests_to_frame
    from services.profiler.model import ModelArtifactError, load_model
    from services.profiler.rules_cli import read_manifest_files

    try:
        model = load_model(path)
    except ModelArtifactError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    read, problems = read_manifest_files(manifests)
    for problem in problems:
        typer.echo(problem, err=True)
    batch = [m for m, _ in read]
    features = add_features(manifests_to_frame(batch), batch)
    if features.is_empty():
        typer.echo("no travellers")
        return
    ranked = features.with_columns(probability=pl.Series(model.score(features))).sort(
        "probability", descending=True, maintain_order=True
    )
    ranked = ranked.head(top)
    for row, contributions in zip(ranked.iter_rows(named=True), model.explain(ranked), strict=True):
        source = read[row["manifest_index"]][1]
        words = ", ".join(str(c) for c in contributions)
        typer.echo(f"{row['probability']:.3f}  {source} traveller {row['traveller_index'] + 1}: {words}")
