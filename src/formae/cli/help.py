"""Help that reads like the tools people know: ``Usage: formae apply [OPTIONS] FILE``.

typer's defaults print ``<bool>`` after every flag, ``{file}`` for a required argument, and draw
boxes that a pipe or a narrow terminal turns into noise. Every ``formae`` command group is made
with :class:`FormaeTyper`, whose commands render the plain click layout (no boxes, no type
after flags), write arguments in the usual style (``FILE``, ``[COMMAND_ID]``), and end with the
exit codes scripts can rely on. Their parameters convert plain values without pydantic (see
``formae.cli.params``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from formae.cli.params import UNSURE, plain_value

EXIT_CODES = """\
Exit codes:
  0  success
  1  the command ran and failed (a resource failed, the agent went away mid-way)
  2  bad usage (an unknown option, a missing argument)
  3  the agent refused the command (invalid forma, no plugin, a conflict, needs --force)
  4  no agent to talk to (start one: formae agent start --background)"""


class _PlainFirst:
    """Converts a parameter's value with :func:`plain_value`, else with typer's own conversion."""

    def __init__(self, param: _Argument | _Option) -> None:
        self._param = param

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # what typer answers for a value not given, without building its adapter
            return () if param.multiple or param.nargs == -1 else None
        descriptor = self._param.type_descriptor
        plain = plain_value(descriptor.annotation, descriptor.parameter_info, value)
        if plain is not UNSURE:
            return plain
        return self._param.typer_runtime_param().coerce(value, param=param, ctx=ctx)


class _Argument(TyperArgument):
    """Listed under Arguments as ``FILE``, not ``file <path>``."""

    def get_runtime_param(self) -> Any:
        return _PlainFirst(self)

    def typer_runtime_param(self) -> Any:
        return super().get_runtime_param()

    def _rich_display_name(self) -> str:
        return _metavar(self)

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _Option(TyperOption):
    """``--query QUERY`` (argparse's style), not ``--query <str>``; flags show nothing after them."""

    def get_runtime_param(self) -> Any:
        return _PlainFirst(self)

    def typer_runtime_param(self) -> Any:
        return super().get_runtime_param()

    def display_type_rich(self, ctx: Any) -> str:
        return _metavar(self)


def _metavar(param: TyperArgument | TyperOption) -> str:
    return param.metavar or (param.name or "value").upper()


class FormaeCommand(TyperCommand):
    """A command whose usage line names arguments plainly and whose help ends with the exit codes.

    typer builds its own parameter objects; they are given our display rules by changing their
    class to the subclasses above, which add no state (only how they are shown).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_params(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _plain_params([option])
        return option

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_argument_usage(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        super().format_epilog(ctx, formatter)
        formatter.write_paragraph()
        for line in EXIT_CODES.splitlines():
            formatter.write(f"{line}\n")


class FormaeGroup(TyperGroup):
    """A command group whose own options (``--no-color``) convert their values as commands' do."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_params(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _plain_params([option])
        return option


def _plain_params(params: list[Any]) -> None:
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption:
            param.__class__ = _Option


def _argument_usage(argument: TyperArgument) -> str:
    name = _metavar(argument)
    if argument.nargs != 1:
        name += "..."
    return name if argument.required else f"[{name}]"


class FormaeTyper(typer.Typer):
    """A ``typer.Typer`` whose commands are ``FormaeCommand`` and whose help is plain text."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("add_completion", False)
        kwargs.setdefault("cls", FormaeGroup)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", FormaeCommand)
        return super().command(*args, **kwargs)
