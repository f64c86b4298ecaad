"""cnnbench: a comparative benchmarking and profiling harness for classic CNNs.

The flow, one module a job, read top to bottom (the record, cases, stats, values,
escape and errors import no torch; models in classic_cnns never import the harness;
nothing imports cli):

    what to measure    zoo (model names, plugins) -> analysis (static params, MACs, bytes; catalog caches
                       it for `list`) -> cases (the case axes, Case, Measure) -> suites (products of axes)
    measuring          prepare (build, cast, check, warm up) -> worker (time one case in its own process;
                       --serve for interleaved blocks) -> processes (start, pin, kill workers) -> group (N
                       workers interleaved, round by round) -> runner (a suite, group by group) and
                       ab (two cases interleaved); calibrate, instructions,
                       profiling beside them; environment says what it all ran on
    keeping            record (Result, statuses; no torch) -> store (SQLite or any SQLAlchemy URL),
                       runfile (versioned JSON), results (tidy DataFrames), pytest_import
    reading            stats (every statistical method) -> compare (verdicts, the gate's rule) ->
                       confirm (compare --confirm) ; report (the HTML page)
    the edges          values (every user-typed value checked once), escape (names made safe as paths,
                       terminal text, Markdown, links), errors (the one error tree), precision (the precision
                       table), table and views (terminal output), cli
"""

__version__ = "0.1.0"
