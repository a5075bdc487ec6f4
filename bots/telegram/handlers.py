"""Wiring commands, photos and buttons into the PTB ``Application``.

Each handler only parses the Telegram update into the neutral request the job service takes, then hands it over
(absorb 7: ``check_update`` → ``handle_update``). Errors a user caused come back as one line; anything else is logged
and answered with a generic line, so the user never meets silence.
"""

from __future__ import annotations

import logging
from typing import Any, TypeAlias

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import CallbackContext, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from impasto.bots.i18n.catalog import t
from impasto.bots.i18n.locale import negotiate
from impasto.bots.i18n.refusals import localize
from impasto.bots.service.outages import outage_line
from impasto.bots.telegram.app import TgApp
from impasto.bots.telegram.buttons import Buttons
from impasto.bots.telegram.commands import Commands
from impasto.bots.telegram.deps import Deps
from impasto.bots.telegram.describe import Describe
from impasto.bots.telegram.language import reply_locale
from impasto.bots.telegram.moderation import ModCommands
from impasto.bots.telegram.photos import Photos
from impasto.bots.telegram.replies import reply_error, reply_html
from impasto.bots.telegram.requests import requester
from impasto.bots.telegram.review_queue import CALLBACK_PATTERN, TelegramReview

log = logging.getLogger(__name__)
REVIEW_KEY = "impasto_review"  # application.bot_data: this process's TelegramReview, when /mod is on
Context: TypeAlias = CallbackContext[Any, Any, Any, Any]


SERVICE_KEY = "impasto_service"  # application.bot_data: the job service, to read each user's reply language


async def _locale(update: Update, context: Context) -> str:
    """The user's reply language: with the job service, their /settings choice, app and group; else their app's."""
    user, chat = update.effective_user, update.effective_chat
    app_locale = negotiate(platform=user.language_code if user is not None else None)
    service = context.application.bot_data.get(SERVICE_KEY) if context.application is not None else None
    if service is None or user is None or chat is None:
        return app_locale
    return await reply_locale(service, requester(user, chat))


async def start(update: Update, context: Context) -> None:
    if update.effective_message is not None:
        await reply_html(update.effective_message, t("help.start", await _locale(update, context)))


async def help_command(update: Update, context: Context) -> None:
    if update.effective_message is not None:
        await reply_html(update.effective_message, t("help.telegram", await _locale(update, context)))


async def on_error(update: object, context: Context) -> None:
    """Last resort: log the traceback, tell the user one line (an outage says so: "the queue is restarting…")."""
    outage = outage_line(context.error) if context.error is not None else None
    if outage is not None:
        log.warning("a Telegram handler met an outage: %s", context.error)
    else:
        log.error("unhandled error in a Telegram handler", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None:
        user = update.effective_user
        locale = negotiate(platform=user.language_code if user is not None else None)  # no SQL: it may be down
        try:
            line = localize(outage, locale) if outage is not None else t("reply.internal_error", locale)
            await reply_error(update.effective_message, line)
        except TelegramError:
            log.exception("could not report an error to the user")


def install_basic(application: TgApp) -> None:
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("help", help_command))
    application.add_error_handler(on_error)


def install(application: TgApp, deps: Deps) -> None:
    """Every command, photo and button handler, on top of the basic ones."""
    application.bot_data[SERVICE_KEY] = deps.service
    install_basic(application)
    describe = Describe(deps)
    commands, photos, buttons = Commands(deps), Photos(deps, describe), Buttons(deps)
    application.add_handler(CommandHandler("imagine", commands.imagine))
    application.add_handler(CommandHandler("blend", commands.blend_without_album))
    application.add_handler(CommandHandler("settings", commands.settings))
    application.add_handler(CommandHandler(["fast", "relax", "turbo"], commands.mode))
    application.add_handler(CommandHandler("prefer", commands.prefer))
    application.add_handler(CommandHandler("info", commands.info))
    application.add_handler(CommandHandler("history", commands.history))
    application.add_handler(CommandHandler("show", commands.show))
    application.add_handler(CommandHandler("gallery", commands.gallery))
    application.add_handler(CommandHandler("describe", describe.command))
    application.add_handler(CommandHandler("language", commands.language))
    if deps.moderation is not None:
        # The review queue, appeals and the audit feed (``review_queue.py``); main() runs ``review.feed``.
        review = TelegramReview(application.bot, deps.service, deps.delivery, deps.moderation, deps.redis, ns=deps.ns)
        deps.delivery.on_held = review.on_held
        application.bot_data[REVIEW_KEY] = review
        application.add_handler(CallbackQueryHandler(review.pressed, pattern=CALLBACK_PATTERN))
        application.add_handler(CommandHandler("mod", ModCommands(deps.service, deps.moderation, review, deps.web).mod))
    application.add_handler(MessageHandler(filters.PHOTO | filters.Document.IMAGE, photos.photo))
    application.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, buttons.remix_reply))
    application.add_handler(CallbackQueryHandler(buttons.pressed))
