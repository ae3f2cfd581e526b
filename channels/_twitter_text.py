"""twitter-text-parser, imported once and quietly: it imports setuptools' pkg_resources at import time, whose
deprecation warning every `crieur` command would otherwise print."""

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    from twitter_text import parse_tweet
    from twitter_text.config import config
    from twitter_text.regexp.valid_cctld import valid_cctld
    from twitter_text.regexp.valid_gtld import valid_gtld

__all__ = ["config", "parse_tweet", "valid_cctld", "valid_gtld"]
