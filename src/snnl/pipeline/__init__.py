"""Operations on the pipeline itself, apart from the library and the steps it runs:

    snnl.pipeline.lock     is Snakemake's lock in a working directory stale? (`snnl stale-lock`)
    snnl.pipeline.report   does the Snakemake HTML report show every figure, and open on the claims
                           table (`snnl check-report`)? That table, for the report (`snnl report-claims`)

The Snakefile's config checks are :func:`snnl.config.check_document` and the ``--config``
handling :mod:`snnl.overrides` (workflow/rules/common.smk).
"""
