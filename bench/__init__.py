"""cnnbench: a comparative benchmarking and profiling harness for classic CNNs.

The flow, one module a job, read top to bottom (the record, cases, stats, values,
escape and errors import no torch; models in classic_cnns never import the harness;
nothing imports cli, but the task submit sends, which is the command line run in a batch job):

    what to measure    zoo (model names, plugins) -> analysis (static params, MACs, bytes; catalog caches
                       it for `list`) -> cases (the case axes, Case, Measure) -> suites (products of axes)
    measuring          devices (what differs by device: a class each; telemetry reads a GPU through NVML)
                       -> prepare (build, cast, check, warm up) -> worker (time one case in its own process;
                       --serve for interleaved blocks) -> processes (start, pin, kill workers) -> group (N
                       workers interleaved, round by round) -> runner (a suite, group by group; submit
                       sends its shards to Slurm as one job array) and ab (two cases interleaved);
                       calibrate, instructions, profiling beside them; environment says what it all ran on
    keeping            record (Result, statuses; no torch) -> store (SQLite, PostgreSQL or any SQLAlchemy
                       URL; migrate and migrations/ evolve its schema), runfile (versioned JSON), results
                       (tidy DataFrames), pytest_import, merge (runs from other stores and run files)
    reading            stats (every statistical method) -> compare (verdicts, the gate's rule) ->
                       confirm (compare --confirm) ; report (the HTML page)
    the edges          values (every user-typed value checked once), escape (names made safe as paths,
                       terminal text, Markdown, links), errors (the one error tree), precision (the precision
                       table), table and views (terminal output), cli (with flags, its shared option groups)
"""

__version__ = "0.1.0"
