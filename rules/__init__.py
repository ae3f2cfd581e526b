"""From items to alerts: the rules community managers write, and the text each channel receives.

    loader      rule files → RuleSet, with file:line:column errors (RuleError, ValidationFailed)
    territories territories file; which territories an item concerns (Territories.resolve)
    engine      Engine(ruleset, territories).decide(item, EvalState) → [Decision]; Decision.to_alert
    templates   Templates(dir).render(alert, channel_kind, limits, template, signature) → Rendered
    fitting     per-channel counting (X, Mastodon, Bluesky, SMS GSM-7/UCS-2), facets, shortening
    book        RuleBook: load, atomic reload keeping the old rules on error
    competence  the authorities and what each is responsible for; routing citizens' questions
    cli         `crieur rules check` / `crieur rules test`

Imports stay in the submodules so that importing `rules` costs nothing.
"""
