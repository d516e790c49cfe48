"""``%nexus`` and ``%%nexus``: ask in the current conversation, or run a sub-command.

    %%nexus [--new] [--thread ID] [-o NAME] [--model MODEL] [--show-sql]
    Which hot leads of the Kafka project have not been contacted yet?

    %nexus sql [-o NAME] SELECT tier, count(*) FROM lead_scores GROUP BY tier

Sub-commands are looked up in a table (``SUBCOMMANDS``). One that takes no argument
(``history``, ``status`` ...) is recognised only when nothing but options follows it, so
``%nexus status of the Kafka leads?`` is still a question. Settings live in the ``Nexus``
configurable: ``%config Nexus.show_sql = True``.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Float, Unicode, observe
from traitlets.config import Configurable

from .session import NexusError, NexusSession, get_session

if TYPE_CHECKING:
    from .agent.turn import TurnResult


class Nexus(Configurable):
    """Settings of ``%nexus`` (``%config Nexus.<name> = ...`` or ``c.Nexus.<name>`` in ipython_config.py)."""

    model = Unicode(None, allow_none=True, help="Model for questions (default: NEXUS_MODEL, else gpt-4.1-mini).").tag(
        config=True
    )
    show_sql = Bool(False, help="Open the steps list with each query's SQL, and the SQL under tables.").tag(config=True)
    show_steps = Bool(True, help="Keep the 'Ran N steps' summary above each answer.").tag(config=True)
    interactive_charts = Bool(
        True, help="Interactive Altair charts (with a static SVG twin for saved notebooks); False: SVG only."
    ).tag(config=True)
    updates_per_second = Float(
        None,
        allow_none=True,
        help="At most this many live updates a second reach the browser from a cell "
        "(default: agent.live.UPDATES_PER_SECOND, the rate of every live view).",
    ).tag(config=True)

    @observe("model")
    def _model_changed(self, change) -> None:
        session = get_session()
        if session._assistant is not None:
            from .agent.provider import ModelSettings

            session.assistant.model = change.new or ModelSettings.from_env().model
            from .ui.panel import existing_panel

            panel = existing_panel(session.assistant)
            if panel is not None:
                panel.controller.refresh_model()  # the panel's header names the new model at once


# -- parsing --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as one line (IPython shows UsageError without a traceback)."""

    def __init__(self, prog: str, value_options: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False, **kwargs)
        self.value_options = value_options

    def error(self, message: str):
        usage = " ".join(self.format_usage().split())
        raise UsageError(f"{self.prog}: {message} ({usage})")


def _name(value: str) -> str:
    if not value.isidentifier() or keyword.iskeyword(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a valid Python variable name")
    return value


def _ask_parser() -> _Parser:
    p = _Parser(
        "%nexus",
        ("--thread", "-o", "--out", "--model"),
        usage="%(prog)s [--new] [--thread ID] [-o NAME] [--model MODEL] [--show-sql] QUESTION",
    )
    p.add_argument("--new", action="store_true", help="start a fresh conversation")
    p.add_argument("--thread", metavar="ID", help="continue a stored conversation (a unique id prefix will do)")
    p.add_argument("-o", "--out", metavar="NAME", type=_name, help="bind the last query's DataFrame to NAME")
    p.add_argument("--model", metavar="MODEL", help="use this model for this question only")
    p.add_argument("--show-sql", action="store_true", default=None, help="show every query's SQL")
    return p


_TOKEN = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+))""")


def split_options(text: str, value_options: tuple[str, ...]) -> tuple[list[str], str]:
    """Leading ``-x`` / ``--xyz [value]`` tokens, and the untouched rest (a question keeps its quotes)."""
    tokens: list[str] = []
    pos = 0
    needs_value = False
    while True:
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            break
        dq, sq, bare = match.groups()
        token = dq if dq is not None else sq if sq is not None else bare
        if needs_value:
            tokens.append(token)
            needs_value = False
        elif bare == "--":
            pos = match.end()
            break
        elif bare is not None and bare.startswith("-") and len(bare) > 1 and not bare[1].isdigit():
            tokens.append(bare)
            needs_value = bare in value_options
        else:
            break
        pos = match.end()
    return tokens, text[pos:].strip()


# -- sub-commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Subcommand:
    name: str
    run: Callable[[NexusMagics, str, str | None], None]  # (magics, rest of the line, cell body)
    usage: str
    summary: str
    takes_argument: bool = False


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(name: str, usage: str, summary: str, *, takes_argument: bool = False):
    def register(func):
        SUBCOMMANDS[name] = Subcommand(name, func, usage, summary, takes_argument)
        return func

    return register


HELP_FOOTER = """\
In the notebook: `nexus` is the session (nexus.frames, nexus.df, nexus.assistant,
nexus.ask(...)); `_nexus_df` is the last DataFrame. Every DataFrame keeps its SQL in
df.attrs["sql"]. Settings: %config Nexus (model, show_sql, show_steps, interactive_charts,
updates_per_second)."""


@magics_class
class NexusMagics(Magics):
    def __init__(self, shell, session: NexusSession) -> None:
        super().__init__(shell)
        self.session = session

    # No {var}/$var expansion: "$plg-database" is a skill mention and questions are text.
    # Interpolate with Python instead: nexus.ask(f"... {project} ...").
    @no_var_expand
    @line_cell_magic
    def nexus(self, line: str, cell: str | None = None):
        first, _, rest = line.strip().partition(" ")
        sub = SUBCOMMANDS.get(first)
        if sub is not None and (sub.takes_argument or not rest.strip() or rest.lstrip().startswith("-")):
            body = cell.strip() if cell is not None and cell.strip() else None
            if body is not None and not sub.takes_argument:
                raise UsageError(f"%%nexus {sub.name} takes no cell body (usage: {sub.usage})")
            sub.run(self, rest.strip(), body)
            return None
        self._ask(line, cell)
        return None

    # -- asking -----------------------------------------------------------------------------

    def _ask(self, line: str, cell: str | None) -> None:
        parser = _ask_parser()
        tokens, rest = split_options(line, parser.value_options)
        if rest and cell is not None:
            raise UsageError(f"%%nexus: unexpected {rest!r} on the magic line; the question goes in the cell body")
        args = parser.parse_args(tokens)
        question = (cell if cell is not None else rest).strip()
        if not question:
            raise UsageError("%nexus: ask a question, e.g. `%nexus how many hot leads?` (`%nexus help` lists more)")
        from .db.errors import QueryError

        try:
            self.session.ask(
                question, new=args.new, thread=args.thread, out=args.out, model=args.model, show_sql=args.show_sql
            )
        except QueryError as exc:
            raise NexusError(str(exc)) from None

    # -- sub-commands (registered in SUBCOMMANDS) --------------------------------------------

    @subcommand("sql", "%nexus sql [-o NAME] SQL", "run a read query directly (no model)", takes_argument=True)
    def _sql(self, argument: str, body: str | None) -> None:
        parser = _Parser("%nexus sql", ("-o", "--out"), usage="%(prog)s [-o NAME] SQL")
        parser.add_argument("-o", "--out", metavar="NAME", type=_name)
        tokens, query = split_options(argument, parser.value_options)
        args = parser.parse_args(tokens)
        if body is not None:  # the cell body is the SQL, verbatim (comments and all)
            if query:
                raise UsageError(f"%%nexus sql: unexpected {query!r} on the magic line; the SQL goes in the cell body")
            query = body
        if not query:
            raise UsageError("%nexus sql: give a query, e.g. `%nexus sql SELECT count(*) FROM contributors`")
        from .db.errors import QueryError

        try:
            self.session.sql(query, out=args.out)
        except QueryError as exc:
            raise NexusError(exc.paragraph() if hasattr(exc, "paragraph") else str(exc)) from None

    @subcommand("panel", "%nexus panel", "open the chat panel beside the notebook")
    def _panel(self, argument: str, _body: str | None) -> None:
        self._no_options("panel", argument)
        try:
            from .ui.panel import open_panel
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("nexusleads_lab"):
                print(
                    "nexus: the chat panel is not part of this installation (nexusleads_lab.ui.panel is missing); "
                    "%%nexus cells work without it."
                )
                return
            raise NexusError(f"The chat panel needs the {exc.name!r} package; install it with pip.") from None
        open_panel(self.session)

    @subcommand("history", "%nexus history", "list your stored conversations")
    def _history(self, argument: str, _body: str | None) -> None:
        self._no_options("history", argument)
        conversations = self._store_call(self.session.assistant.conversations)
        current = self.session.thread_id
        rows = [
            [("▶ " if c.id == current else "") + c.id[:8], c.title, c.updated_at.strftime("%Y-%m-%d %H:%M"), c.messages]
            for c in conversations
        ]
        from .ui.render import listing_part

        listing_part(
            "Your conversations (resume with %nexus resume ID)",
            ["id", "title", "updated", "messages"],
            rows,
            "No conversations yet: ask something with %%nexus.",
        ).show()

    @subcommand("resume", "%nexus resume ID", "continue a stored conversation", takes_argument=True)
    def _resume(self, argument: str, body: str | None) -> None:
        argument = body if body is not None and not argument else argument
        if not argument or argument.startswith("-") or len(argument.split()) != 1:
            raise UsageError("%nexus resume: give one conversation id (usage: %nexus resume ID; see %nexus history)")
        full = self._store_call(lambda: self.session.resume(argument))
        info = next((c for c in self.session.assistant.conversations() if c.id == full), None)
        title = f"“{info.title}”, {info.messages} messages" if info else full
        from .ui.parts import show_all
        from .ui.render import transcript_parts

        show_all(transcript_parts(self.session.assistant.transcript(full)))
        print(f"Resumed {title} ({full[:8]}). The next %%nexus question continues it.")

    @subcommand("reset", "%nexus reset", "start a new conversation")
    def _reset(self, argument: str, _body: str | None) -> None:
        self._no_options("reset", argument)
        self.session.reset()
        print("New conversation: the next question starts fresh (earlier DataFrames stay in nexus.frames).")

    @subcommand(
        "demo", "%nexus demo reset [--if-changed]", "restore the embedded demo data as seeded", takes_argument=True
    )
    def _demo(self, argument: str, _body: str | None) -> None:
        words = argument.split()
        if not words or words[0] != "reset" or any(w != "--if-changed" for w in words[1:]):
            raise UsageError(f"%nexus demo: usage: {SUBCOMMANDS['demo'].usage}")
        from .db.demo import reset_demo
        from .db.errors import QueryError

        try:
            print(reset_demo(self.session.assistant.database, only_if_changed="--if-changed" in words))
        except QueryError as exc:  # DATABASE_URL: not ours to empty; the notebook still runs on its data
            print(f"Demo data left as it is: {exc}")

    @subcommand("skills", "%nexus skills", "list the skills the assistant can read")
    def _skills(self, argument: str, _body: str | None) -> None:
        self._no_options("skills", argument)
        skills = self.session.assistant.skills
        rows = [[s.name, " ".join(s.description.split()), s.source] for s in skills]
        for problem in getattr(skills, "problems", []):
            print(f"nexus: skipped a skill: {problem}", file=sys.stderr)
        from .ui.render import listing_part

        listing_part(
            "Skills (mention one with $name to load it whole)",
            ["name", "description", "source"],
            rows,
            "No skills found.",
        ).show()

    @subcommand("status", "%nexus status [--full]", "model, database, user and org; --full adds paths and URLs")
    def _status(self, argument: str, _body: str | None) -> None:
        parser = _Parser("%nexus status", usage="%(prog)s [--full]")
        parser.add_argument("--full", action="store_true")
        tokens, rest = split_options(argument, ())
        if rest:
            raise UsageError(f"%nexus status: unexpected {rest!r} (usage: {SUBCOMMANDS['status'].usage})")
        print(status_text(self.session, full=parser.parse_args(tokens).full))

    @subcommand("help", "%nexus help", "this help")
    def _help(self, argument: str, _body: str | None) -> None:
        print(help_text())

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _no_options(name: str, argument: str) -> None:
        if argument:
            raise UsageError(f"%nexus {name}: unexpected {argument!r} (usage: {SUBCOMMANDS[name].usage})")

    @staticmethod
    def _store_call(call):
        from .db.errors import QueryError

        try:
            return call()
        except QueryError as exc:
            raise NexusError(str(exc)) from None


def help_text() -> str:
    ask = _ask_parser()
    lines = ["%nexus QUESTION  /  %%nexus + question in the cell: ask in the current conversation", ""]
    lines.append("  " + " ".join(ask.format_usage().split()))
    for action in ask._actions:
        flags = ", ".join(action.option_strings) + (f" {action.metavar}" if action.metavar else "")
        lines.append(f"    {flags:<22} {action.help}")
    lines += ["", "Sub-commands:"]
    for sub in SUBCOMMANDS.values():
        lines.append(f"  {sub.usage:<28} {sub.summary}")
    lines += ["", HELP_FOOTER]
    return "\n".join(lines)


def _mask(text: str, *secrets: str | None) -> str:
    from .db.errors import mask_secrets

    text = mask_secrets(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _model_line(settings) -> str:
    """The model, worded so a saved notebook holds no path, host or port."""
    from pathlib import PurePath

    if settings.replay:
        return f"replay {PurePath(settings.replay).name}"
    if settings.mode == "unconfigured":
        return "no model configured (set OPENAI_API_KEY, or NEXUS_REPLAY to a cassette)"
    where = "OPENAI_BASE_URL" if settings.base_url else "OpenAI"
    rec = f", recording to {PurePath(settings.record).name}" if settings.record else ""
    return f"{settings.model} at {where}{rec}"


def _identity_notes(session: NexusSession) -> tuple[str, str]:
    """Where the user and the org came from, for the status lines."""
    identity = session.identity
    if identity is None:  # an assistant attached by code: it says who it is
        return "", ""
    where = session.memory.where if session.memory is not None else ""
    named = {"remembered": f"remembered {where}".strip(), "not set": "NEXUS_ORG not set"}
    return named.get(identity.user_from, identity.user_from), named.get(identity.org_from, identity.org_from)


def status_text(session: NexusSession, *, full: bool = False) -> str:
    """What the session talks to. Without ``full`` it names no path, URL or key status, so a saved
    notebook shows nothing private; ``full`` adds them for the live session (secrets masked)."""
    from ._version import __version__
    from .config import ModelEnv

    assistant = session.assistant
    settings = assistant.settings
    key = settings.api_key or ModelEnv.from_env().api_key
    user_from, org_from = _identity_notes(session)
    lines = [f"NexusLeads Lab {__version__}"]
    lines.append(f"model      {_model_line(settings)}")
    try:
        database = assistant.database
        lines.append(
            f"database   {'embedded PostgreSQL' if database.kind == 'embedded' else 'PostgreSQL at DATABASE_URL'}"
        )
    except Exception as exc:  # status must work when the database does not
        database = None
        lines.append(
            f"database   unavailable: {exc}" if full else "database   unavailable (%nexus status --full says why)"
        )
    lines.append(f"user       {assistant.user}" + (f" (from {user_from})" if user_from else ""))
    scope_from = f"from {org_from}; " if org_from else ""
    lines.append(f"scope      {assistant.scope_label} ({scope_from}enforced by row-level security)")
    thread = assistant.thread.id
    lines.append(f"conversation {thread[:8] if thread else 'new (starts with the next question)'}")
    lines.append(f"frames     {', '.join(session.frames) or 'none yet'}")
    if full:
        lines.append("")
        lines.append(f"model      {settings.describe()}")
        lines.append(f"base URL   {settings.base_url or 'https://api.openai.com/v1 (default)'}")
        lines.append(f"API key    {'set' if key else 'not set'}")
        if database is not None:
            lines.append(f"database   {database.describe()}")
        if session.memory is not None:
            lines.append(f"identity   kept in {session.memory.path}")
        lines.append("(paths and URLs above: clear this output before sharing the notebook)")
    else:
        lines.append("Paths, URLs and the key status: %nexus status --full")
    return _mask("\n".join(lines), key)


def _question_transformer():
    """A token transformer so that ``%nexus how many hot leads?`` is a question, not IPython's
    ``obj?`` help syntax (which would look up ``leads``). ``%nexus?`` alone still shows help."""
    import tokenize

    from IPython.core.inputtransformer2 import EscapedCommand

    class NexusQuestion(EscapedCommand):
        priority = 1  # before HelpEnd (5) at the same position

        @classmethod
        def find(cls, tokens_by_line):
            for line in tokens_by_line:
                ix = 0
                while ix < len(line) and line[ix].type in (tokenize.INDENT, tokenize.DEDENT):
                    ix += 1
                head = line[ix : ix + 3]
                if (
                    len(head) == 3
                    and head[0].string == "%"
                    and head[1].string == "nexus"
                    and head[0].end == head[1].start
                    and head[2].string not in ("?", "??")
                    and len(line) > 2
                    and line[-2].string in ("?", "??")
                ):
                    return cls(line[ix].start)
            return None

    return NexusQuestion


def load(ip) -> None:
    options = next((c for c in ip.configurables if isinstance(c, Nexus)), None)
    if options is None:
        options = Nexus(parent=ip)
        ip.configurables.append(options)
    session = get_session()
    if session.shell is None:
        session.shell = ip
    session.options = options
    if session.memory is None:
        from .config import RememberedIdentity, notebook_path

        session.memory = RememberedIdentity(notebook_path())
    ip.register_magics(NexusMagics(ip, session))
    transformers = ip.input_transformer_manager.token_transformers
    if not any(getattr(t, "__name__", "") == "NexusQuestion" for t in transformers):
        transformers.insert(0, _question_transformer())
    ip.push({"nexus": session}, interactive=False)
    # A TurnResult as a cell's last value prints one line, not every DataFrame it holds.
    plain = ip.display_formatter.formatters["text/plain"]
    plain.for_type_by_name("nexusleads_lab.agent.turn", "TurnResult", _turn_result_repr)
    # A person's own Altair charts draw offline like the answers' (Vega + a PNG twin).
    from .ui.charts import install_altair_formatter

    install_altair_formatter(ip)
    if not session.panel_reopened:  # once per kernel: a rerun leaves the panel be
        session.panel_reopened = True
        _reopen_panel(session)
    _forget_loaded(ip)


def _forget_loaded(ip) -> None:
    """Loading is idempotent, so a rerun of ``%load_ext nexusleads_lab`` (every Run All) loads
    again quietly instead of IPython's "already loaded ... use %reload_ext": once the cell is
    over, the extension manager forgets it loaded this module."""
    manager = getattr(ip, "extension_manager", None)
    if manager is None:
        return

    def forget(*_args) -> None:
        manager.loaded.discard(__package__)
        ip.events.unregister("post_run_cell", forget)

    ip.events.register("post_run_cell", forget)


def _reopen_panel(session: NexusSession) -> None:
    """The chat panel was open in this notebook before the kernel restarted: show it again (its
    front end takes over the dead panel's side tab). Only in a notebook JupyterLab started."""
    memory = session.memory
    if memory is None or memory.notebook is None or not memory.load().get("panel_open"):
        return
    try:
        from .ui.panel import open_panel

        open_panel(session)
    except Exception as exc:  # loading the extension must not fail because the panel cannot open
        print(f"nexus: the chat panel could not reopen ({type(exc).__name__}: {exc}); %nexus panel tries again.")


def unload(ip) -> None:
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("nexus", None)
    ip.configurables[:] = [c for c in ip.configurables if not isinstance(c, Nexus)]
    transformers = ip.input_transformer_manager.token_transformers
    transformers[:] = [t for t in transformers if getattr(t, "__name__", "") != "NexusQuestion"]
    from .ui.charts import uninstall_altair_formatter

    uninstall_altair_formatter(ip)


def _turn_result_repr(result: TurnResult, printer: Any, cycle: bool) -> None:
    response = result.response_dict() or {}
    kind = response.get("type", "no answer")
    what = f"{kind} {response.get('title')!r}" if response.get("title") else kind
    frames = ", ".join(result.frames) or "no frames"
    status = "cancelled" if result.cancelled else f"error: {result.error}" if result.error else what
    printer.text(f"<TurnResult {status} · {len(result.steps)} steps · {frames}>")


NexusMagics.nexus.__doc__ = help_text()
