"""`apihub model`: train the risk model on the synthetic history, show an artefact, explain manifests.

Offline: no broker and no hub needed. Training writes a new versioned artefact directory; the profiler
loads the one named by settings.model_path (services.profiler.model.load_configured).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

model_app = typer.Typer(help="The risk model (review ranking only): train, show, explain.", no_args_is_help=True)

DEFAULT_OUT = Path(".apihub/models")


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


@model_app.command("train")
def train_command(
    out: Annotated[Path, typer.Option("--out", help="Directory under which the versioned artefact is written")] = (
        DEFAULT_OUT
    ),
    rows: Annotated[int, typer.Option("--rows", min=1000, help="Rows of synthetic history to generate")] = 200_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the history and the split")] = 7,
) -> None:
    """Generate the labelled synthetic history, train, evaluate on a held-out split, write the artefact."""
    from services.profiler.model import train

    artefact = train(out, rows=rows, seed=seed)
    _print_evaluation(dict(artefact.metadata))
    typer.echo(f"written to {artefact.path}")
    typer.echo(f"use it: APIHUB_MODEL_PATH={artefact.path}")


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
        _print_evaluation(metadata)
        typer.echo(f"  created {metadata['created']}, scikit-learn {metadata['sklearn_version']}")
        typer.echo(f"  features ({len(metadata['features'])}), log-odds per standard deviation:")
        for name, coef in metadata["coefficients"].items():
            typer.echo(f"    {name:<30} {coef:+.3f}")
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
        source = read[row["m"]][1]
        words = ", ".join(str(c) for c in contributions)
        typer.echo(f"{row['probability']:.3f}  {source} traveller {row['t'] + 1}: {words}")
