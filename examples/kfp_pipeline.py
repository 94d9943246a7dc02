"""The production loop as a Kubeflow Pipelines (v2) pipeline of container components.

Each component runs one ``ferrox <step>`` command in a container image that has ferrox installed
(``--image``, default ``ferrox:latest``): validate → train → evaluate → gate → register → promote, and
drift. Data and models travel as Kubeflow artifacts (their local paths are the command's file arguments;
ferrox recognises Parquet, Arrow and CSV by their first bytes, so extension-less artifact paths work). A
step whose check says no exits with code 3, which fails its task and stops what depends on it: a refused
challenger is never registered, let alone promoted.

Compile it (no cluster needed) and submit the YAML with the Kubeflow UI or ``kfp.Client``:

    python examples/kfp_pipeline.py pipeline.yaml [--image registry.example.com/ferrox:1.0]
"""

# No `from __future__ import annotations`: kfp reads the component annotations as objects.
import argparse
import json
from typing import Any

from kfp import compiler, dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output

DEFAULT_IMAGE = "ferrox:latest"

#: GBDT parameters (LightGBM names) and the promotion rules (MLflow MetricThreshold fields).
DEFAULT_PARAMS = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.05, "num_boost_round": 150}
DEFAULT_THRESHOLDS = {"auc": {"threshold": 0.65, "min_absolute_change": 0.005}, "logloss": {"min_relative_change": 0.01}}


def make_components(image: str = DEFAULT_IMAGE) -> dict[str, Any]:
    """The container components, one per ``ferrox`` step, all running ``image``."""

    @dsl.container_component
    def validate(data: Input[Dataset], target: str, schema: Output[Artifact], report: Output[Artifact]):
        """ferrox validate: exit 3 when the training data has errors."""
        return dsl.ContainerSpec(
            image=image,
            command=["ferrox", "validate"],
            args=["--data", data.path, "--target", target, "--write-schema", schema.path, "--report", report.path],
        )

    @dsl.container_component
    def train(data: Input[Dataset], target: str, params: str, model: Output[Model], metrics: Output[Artifact]):
        """ferrox train: a deployable pipeline artifact (schema and reference profile inside)."""
        return dsl.ContainerSpec(
            image=image,
            command=["ferrox", "train"],
            args=["--data", data.path, "--target", target, "--params", params, "--out", model.path,
                  "--metrics", metrics.path],
        )

    @dsl.container_component
    def evaluate(model: Input[Model], data: Input[Dataset], target: str, slice_column: str, metrics: Output[Artifact]):
        """ferrox evaluate: holdout metrics, overall and per value of ``slice_column``."""
        return dsl.ContainerSpec(
            image=image,
            command=["ferrox", "evaluate"],
            args=["--model", model.path, "--data", data.path, "--target", target, "--slice", slice_column,
                  "--out", metrics.path],
        )

    @dsl.container_component
    def gate(challenger: Input[Model], data: Input[Dataset], target: str, thresholds: str, slice_column: str,
             max_latency_ms: float, verdict: Output[Artifact], champion: Input[Model] = None):
        """ferrox gate: exit 3 (the task fails) when the challenger may not replace the champion."""
        return dsl.ContainerSpec(
            image=image,
            command=["ferrox", "gate"],
            args=["--challenger", challenger.path,
                  dsl.IfPresentPlaceholder(input_name="champion", then=["--champion", champion.path]),
                  "--data", data.path, "--target", target, "--thresholds", thresholds, "--slice", slice_column,
                  "--max-latency-ms", max_latency_ms, "--out", verdict.path],
        )

    @dsl.container_component
    def register(model: Input[Model], verdict: Input[Artifact], model_name: str, tracking_uri: str,
                 registered: Output[Artifact]):
        """ferrox register: log the artifact to MLflow, register it, alias ``challenger``."""
        return dsl.ContainerSpec(
            image=image,
            command=["ferrox", "register"],
            args=["--model", model.path, "--name", model_name, "--tracking-uri", tracking_uri, "--alias",
                  "challenger", "--verdict", verdict.path, "--out", registered.path],
        )

    @dsl.container_component
    def promote(registered: Input[Artifact], verdict: Input[Artifact], tracking_uri: str, promoted: Output[Artifact]):
        """ferrox promote: point ``champion`` at the registered version (rollback remembers the old one)."""
        return dsl.ContainerSpec(
            image=image,
            command=["ferrox", "promote"],
            args=["--registered", registered.path, "--alias", "champion", "--tracking-uri", tracking_uri,
                  "--verdict", verdict.path, "--out", promoted.path],
        )

    @dsl.container_component
    def drift(reference: Input[Model], current: Input[Dataset], target: str, report: Output[Artifact], html: Output[HTML]):
        """ferrox drift: the new data against the profile the model carries (reported, not failing)."""
        return dsl.ContainerSpec(
            image=image,
            command=["ferrox", "drift"],
            args=["--reference", reference.path, "--current", current.path, "--target", target, "--out", report.path,
                  "--html", html.path, "--exit-zero"],
        )

    return {"validate": validate, "train": train, "evaluate": evaluate, "gate": gate, "register": register,
            "promote": promote, "drift": drift}


def make_pipeline(image: str = DEFAULT_IMAGE) -> Any:
    """The pipeline: data and the champion come in as artifact URIs, the registry as a tracking URI."""
    c = make_components(image)

    @dsl.pipeline(name="ferrox-train-gate-promote",
                  description="validate, train, evaluate, gate, register and promote a ferrox model; watch drift")
    def pipeline(
        train_uri: str,
        holdout_uri: str,
        current_uri: str,
        champion_uri: str,
        tracking_uri: str,
        model_name: str = "flights",
        target: str = "late",
        slice_column: str = "carrier",
        params: str = json.dumps(DEFAULT_PARAMS),
        thresholds: str = json.dumps(DEFAULT_THRESHOLDS),
        max_latency_ms: float = 250.0,
    ):
        train_data = dsl.importer(artifact_uri=train_uri, artifact_class=Dataset, reimport=False)
        holdout = dsl.importer(artifact_uri=holdout_uri, artifact_class=Dataset, reimport=False)
        current = dsl.importer(artifact_uri=current_uri, artifact_class=Dataset, reimport=False)
        champion = dsl.importer(artifact_uri=champion_uri, artifact_class=Model, reimport=False)

        checked = c["validate"](data=train_data.output, target=target)
        trained = c["train"](data=train_data.output, target=target, params=params).after(checked)
        c["evaluate"](model=trained.outputs["model"], data=holdout.output, target=target, slice_column=slice_column)
        verdict = c["gate"](challenger=trained.outputs["model"], champion=champion.output, data=holdout.output,
                            target=target, thresholds=thresholds, slice_column=slice_column,
                            max_latency_ms=max_latency_ms)
        registered = c["register"](model=trained.outputs["model"], verdict=verdict.outputs["verdict"],
                                   model_name=model_name, tracking_uri=tracking_uri)
        c["promote"](registered=registered.outputs["registered"], verdict=verdict.outputs["verdict"],
                     tracking_uri=tracking_uri)
        c["drift"](reference=trained.outputs["model"], current=current.output, target=target)

    return pipeline


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Compile the ferrox Kubeflow pipeline to an IR YAML file.")
    p.add_argument("out", nargs="?", default="ferrox_pipeline.yaml", help="the YAML file to write")
    p.add_argument("--image", default=DEFAULT_IMAGE, help=f"the container image with ferrox (default {DEFAULT_IMAGE})")
    args = p.parse_args(argv)
    compiler.Compiler().compile(make_pipeline(args.image), package_path=args.out)
    print(json.dumps({"compiled": args.out, "image": args.image}))


if __name__ == "__main__":
    main()
