"""Synthetic MovieLens: data in the exact file format of a release, with a known ground truth.

MovieLens itself may not be redistributed, so this generator is the pipeline's embedded default
data set. It writes the files of one layout (ML-1M's ``ratings.dat``, ``users.dat`` and
``movies.dat`` by default) exactly as GroupLens ships them, plus ``generator.json`` (the
`GenerationReport`). Because the generative model is known, the report states the *noise
floor*: the RMSE that the Bayes-optimal predictor reaches, the yardstick for every model
trained on the data. Everything is deterministic: the same config gives byte-identical files.

The generative model, one module per part (all draws from ``numpy.random`` streams spawned from
``config.seed``, `truth`):

* `people`: users with ML-1M's gender, age and occupation proportions (under-18 users mostly
  K-12 students, many of the oldest retired) and clustered zip codes, a few with a suffix.
* `catalog` and `titles`: movie ids with gaps, as in ML-1M; one to three genres with ML-1M's
  genre frequencies; a year with its recent-skewed histogram; a title in one of ML-1M's shapes.
* `preferences`: the latent rating of user u for movie m, in rating units::

      latent = GLOBAL_MEAN + b_u + b_m + <p_u, q_m> + eps,   eps ~ N(0, noise^2)

  with biases from demographics, genres and year, and factors that mix side-feature
  embeddings with individual parts; factor 0 is a planted gender x genre axis, factor 1 an
  age x genre axis, the spectrum decays, and ``<p_u, q_m>`` has standard deviation
  ``interaction_std``.
* `rating_scale`: stars from the latent rating through thresholds calibrated to the release's
  histogram; the Bayes predictor and its error (the noise floor).
* `activity`: who rates what (at least MIN_RATINGS_PER_USER each, a log-normal tail, movies by
  popularity, missing at random given popularity) and when (sessions within the layout's
  window). The ML-1M and ML-10M ratings files are sorted by user, then timestamp.

`marginals` holds the release statistics all this imitates, `config` what to generate,
`writing` the layouts' files, `report` ``generator.json``, `generation` the entry points,
`spans` the same data as time-ordered spans with arrivals and drift (``--spans N``) and `cli`
the `kiko generate` command.
"""

from kiko.data.synthetic.config import LAYOUT_STYLES, GeneratorConfig, LayoutStyle
from kiko.data.synthetic.generation import ensure_generated, generate
from kiko.data.synthetic.marginals import (
    AGE_CODES, GENRES, HALF_STAR_RATING_FRACTIONS, LAST_YEAR, MIN_RATINGS_PER_USER,
    ML1M_FIRST_TIMESTAMP, ML1M_LAST_TIMESTAMP, ML1M_N_MOVIES, ML1M_N_RATINGS, ML1M_N_USERS,
    ML1M_RATING_FRACTIONS, N_OCCUPATIONS, RELEASE_SIZES)
from kiko.data.synthetic.preferences import GLOBAL_MEAN
from kiko.data.synthetic.report import (
    GENERATOR_VERSION, REPORT_FILE, GenerationReport, load_report, summary)
from kiko.data.synthetic.truth import GroundTruth, ground_truth

__all__ = [
    "AGE_CODES", "GENERATOR_VERSION", "GENRES", "GLOBAL_MEAN", "GeneratorConfig",
    "GenerationReport", "GroundTruth", "HALF_STAR_RATING_FRACTIONS", "LAST_YEAR",
    "LAYOUT_STYLES", "LayoutStyle", "MIN_RATINGS_PER_USER", "ML1M_FIRST_TIMESTAMP",
    "ML1M_LAST_TIMESTAMP", "ML1M_N_MOVIES", "ML1M_N_RATINGS", "ML1M_N_USERS",
    "ML1M_RATING_FRACTIONS", "N_OCCUPATIONS", "RELEASE_SIZES", "REPORT_FILE",
    "ensure_generated", "generate", "ground_truth", "load_report", "summary",
]
