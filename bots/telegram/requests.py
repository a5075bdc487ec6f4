"""Telegram update → the job service's neutral ``Requester``, and the idempotency keys of each kind of request."""

from __future__ import annotations

from telegram import Chat, Message, User

from impasto.bots.service.requester import Requester

GROUP_TYPES = (Chat.GROUP, Chat.SUPERGROUP)


def requester(user: User, chat: Chat, thread_id: int | None = None) -> Requester:
    """Users are Telegram users; a group or supergroup is the "guild" whose rules and caps apply."""
    in_group = chat.type in GROUP_TYPES
    channel = f"{chat.id}:{thread_id}" if thread_id else str(chat.id)
    return Requester(
        platform="telegram",
        user_id=str(user.id),
        display_name=(user.full_name or user.username or str(user.id))[:128],
        guild_id=str(chat.id) if in_group else None,
        channel_id=channel,
        client_locale=user.language_code,
    )


def message_key(message: Message) -> str:
    """A command message is one request however often Telegram (or a retry) delivers it."""
    return f"tg:m:{message.chat_id}:{message.message_id}"


def callback_key(callback_query_id: str) -> str:
    """One button press = one callback query id; a double click sends two ids, but the service also locks per user."""
    return f"tg:c:{callback_query_id}"


def thread_of(message: Message) -> int | None:
    """The forum topic to answer in (only topic messages carry a thread that the Bot API accepts back)."""
    return message.message_thread_id if message.is_topic_message else None
