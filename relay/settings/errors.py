"""The one configuration error type, for relay.toml, webhooks.toml and the environment."""

from __future__ import annotations


class ConfigError(ValueError):
    """The configuration cannot be used. It never contains a secret's value.

    ``message`` says what is wrong in a sentence that names the setting; ``setting`` is that
    setting's dotted key (``server.port``; empty when the error concerns no one key, such as
    an unreadable file), and its source is ``env``, the variable that set it, or else
    ``file``, the document it is a key of. Callers read these fields; none parses the text.
    """

    def __init__(
        self,
        message: str,
        *,
        setting: str = "",
        env: str | None = None,
        file: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.setting = setting
        self.env = env
        self.file = file

    def located(
        self, *, setting: str = "", env: str | None = None, file: str | None = None
    ) -> ConfigError:
        """This error with its setting and source filled in where it had none."""
        return ConfigError(
            self.message,
            setting=self.setting or setting,
            env=self.env or env,
            file=self.file or file,
        )

    def __str__(self) -> str:
        if self.env:
            return f"{self.env}: {self.message}"
        if self.file:
            return f"{self.message} (in {self.file})"
        return self.message

    def to_json(self) -> dict[str, str | None]:
        return {
            "setting": self.setting or None,
            "env": self.env,
            "file": self.file,
            "message": self.message,
        }
