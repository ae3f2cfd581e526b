"""From items to alerts: the rules community managers write, and the text each channel receives.

    loader      rule files → RuleSet, with file:line:column errors (RuleError, ValidationFailed) and warnings
    vocabulary  what the parsers (and the configured sources) put in items, for checking rule values
    references  a rule's sources and values against the configuration and that vocabulary
    lint        rules shadowed by an earlier rule in first-match mode
    coverage    rules run on real documents: rules that never fired, items no rule handled
    report      the console's French report after a reload
    territories territories file; which territories an item concerns (Territories.resolve)
    engine      Engine(ruleset, territories).decide(item, EvalState) → [Decision]; Decision.to_alert
    templates   Templates(dir).render(alert, channel_kind, limits, template, signature) → Rendered
    fitting     per-channel counting (X, Mastodon, Bluesky, SMS GSM-7/UCS-2), facets, shortening
    book        RuleBook: load, atomic reload keeping the old rules on error
    competence  the authorities and what each is responsible for; routing citizens' questions
    cli         `crieur rules check [--against FOLDER]` / `crieur rules test`

Imports stay in the submodules so that importing `rules` costs nothing.
"""
