"""fitroom: an open virtual fitting room (command line, settings, errors)."""

from fitroom.errors import FitroomError

__all__ = ["FitroomError"]
