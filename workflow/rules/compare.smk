# The model comparison of the paper on the test split: metrics of every model and of raw
# ERA5-Land, the sequence-length sweep, attention per lag, figures and the summary; the
# ranking is tested over the test pixels and the seed replicates (comparison.seeds).


rule compare_models:
    input:
        unpack(
            lambda wildcards: {
                **compared_models(),
                **sweep_models(),
                **replicate_models(),
            }
        ),
        samples=run_path("samples", "samples.zarr"),
    output:
        metrics=report(
            comparison_path("metrics"),
            caption="../report/comparison_metrics.rst",
            category="Model comparison",
        ),
        sequence_length=comparison_path("sequence_length"),
        attention=comparison_path("attention"),
        scatter=report(
            comparison_path("scatter"),
            caption="../report/comparison_scatter.rst",
            category="Model comparison",
        ),
        length_figure=report(
            comparison_path("length_figure"),
            caption="../report/comparison_length.rst",
            category="Model comparison",
        ),
        attention_figure=report(
            comparison_path("attention_figure"),
            caption="../report/comparison_attention.rst",
            category="Model comparison",
        ),
        summary=report(
            comparison_path("summary"),
            caption="../report/comparison_summary.rst",
            category="Model comparison",
        ),
        summary_json=comparison_path("summary_json"),
    log:
        log_path("compare_models"),
    benchmark:
        benchmark_path("compare_models")
    conda:
        "../../envs/learn.yaml"
    threads: request_threads("compare_models")
    resources:
        mem_mb=request_mem_mb("compare_models"),
        runtime=request_runtime("compare_models"),
    params:
        code=code_version("compare_models"),
        models=list(compared_models()),
        sweep_lengths=config["comparison"]["sequence_lengths"],
        sweep_model=config["comparison"]["sweep_model"],
        seeds=config["comparison"]["seeds"],
        wet_threshold=config["samples"]["wet_threshold"],
    message:
        "Compare the models on the test split [{threads} threads, {resources.mem_mb} MB, {resources.runtime} min]"
    script:
        "../scripts/compare_models.py"
