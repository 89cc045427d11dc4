"""The whole service in one process: HTTP API, media server, controller, dialers.

Everything shares the one event loop (uvloop under `callwright serve`). The
HTTP API and the carrier callbacks are served by uvicorn in-process; the
media WebSockets keep their own listener (the `websockets` server), so the
per-frame path never goes through the ASGI stack. `Service.start` brings
the parts up in dependency order and `stop` takes them down in reverse.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mediaserver.amd.events import Label, Verdict
from mediaserver.api.app import create_app
from mediaserver.api.control import CampaignReader, ControlBackend
from mediaserver.api.routes_actions import actions_router
from mediaserver.api.server import ApiServer, bind_socket
from mediaserver.carriers.simulated import SimulatedCarrier
from mediaserver.config import Settings
from mediaserver.controller.dialer import Dialer
from mediaserver.controller.outbox import OutboxHooks
from mediaserver.controller.service import Controller
from mediaserver.corpus import default_corpus_dir
from mediaserver.errors import ConfigError
from mediaserver.media_amd import AmdEngine
from mediaserver.media_server import MediaServer, MediaServerSettings
from mediaserver.plan import CallOutcome, CallPlan
from mediaserver.store.campaigns import CampaignStore
from mediaserver.store.db import create_schema, make_engine
from mediaserver.store.queue import QueueStore

logger = logging.getLogger(__name__)

SWEEP_EVERY_S = 30.0  # how often answered calls with no outcome are looked for


class _CampaignActions:
    """The outbox's view of campaigns: a version read in the caller's transaction."""

    def __init__(self, campaigns: CampaignStore) -> None:
        self._campaigns = campaigns

    async def campaign_for(
        self, conn: AsyncConnection, campaign_id: str, version: int | None
    ) -> Any | None:
        return await self._campaigns.get(campaign_id, version, conn=conn)


class _ControllerSeat:
    """Plans and observations for the media server, forwarded to the controller.

    The media server is built before the controller (the controller needs the
    media listener's URL), so it is handed this seat, filled once both exist.
    An ended call's outcome also goes to the outbox, which records the
    conversation and fires call-ended (the controller only settles status).
    """

    def __init__(self, queue: QueueStore, hooks: OutboxHooks) -> None:
        self.controller: Controller | None = None
        self._queue = queue
        self._hooks = hooks

    def _get(self) -> Controller:
        if self.controller is None:
            raise RuntimeError("the controller is not seated yet")
        return self.controller

    async def plan_for(self, call_id: str) -> CallPlan | None:
        return await self._get().plan_for(call_id)

    async def call_answered(self, call_id: str, at: dt.datetime) -> None:
        await self._get().call_answered(call_id, at)

    async def call_verdict(self, call_id: str, verdict: Verdict) -> None:
        await self._get().call_verdict(call_id, verdict)

    async def call_ended(self, outcome: CallOutcome) -> None:
        await self._get().call_ended(outcome)
        async with self._queue.transaction() as conn:
            attempt = await self._queue.get(outcome.call_id, conn=conn)
            if attempt is not None:
                row = msgspec.structs.asdict(attempt)
                await self._hooks.call_ended(conn, outcome, row)


def _llm_check(
    settings: Settings,
) -> Callable[[NDArray[np.int16], float], Awaitable[Label | None]] | None:
    """The AMD's LLM verification, when an OpenAI-compatible server is set."""
    if not settings.llm.base_url:
        return None
    from mediaserver.amd.llm_check import make_client, verify_greeting

    client = make_client(settings.llm.base_url, settings.llm.api_key.reveal())
    model = settings.llm.audio_model

    async def check(pcm: NDArray[np.int16], deadline_s: float) -> Label | None:
        return await verify_greeting(client, model, pcm, deadline_s)

    return check


class Service:
    """One node: API, media server, controller and dialers on one loop."""

    def __init__(
        self,
        settings: Settings,
        *,
        speed: float = 1.0,
        node_id: str = "node-1",
        sim_log_path: Path | None = None,
        dispatch_poll_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self._speed = speed
        self._node_id = node_id
        self._sim_log_path = sim_log_path
        self._poll_s = dispatch_poll_s
        self._secret = settings.media.secret.reveal()
        if not self._secret:
            # One node alone may sign with a per-run key; tokens die with it.
            self._secret = secrets.token_urlsafe(32)
            logger.warning(
                "media.secret is empty: using a random per-run key "
                "(set CALLWRIGHT_MEDIA_SECRET when several nodes serve)"
            )
        self.engine: AsyncEngine | None = None
        self.simulated: SimulatedCarrier | None = None
        self.controller: Controller | None = None
        self.media: MediaServer | None = None
        self.api: ApiServer | None = None
        self._dialers: dict[str, Dialer] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._api_sock: socket.socket | None = None
        self._hooks: OutboxHooks | None = None

    @property
    def api_url(self) -> str:
        if self.api is None:
            raise RuntimeError("the service is not started")
        return self.api.url

    async def start(self) -> None:
        """Open the store, start media, controller and API; raises on failure."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        self.engine = make_engine(settings.database.url)
        await create_schema(self.engine)
        campaigns = CampaignStore(self.engine)
        hooks = self._hooks = OutboxHooks(_CampaignActions(campaigns))
        queue = QueueStore(self.engine, hooks=hooks)

        # Both listeners are bound before anything is built on their URLs, so
        # port 0 (tests, the demo) still gives carriers the right addresses.
        self._api_sock = bind_socket(settings.server.host, settings.server.port)
        seat = _ControllerSeat(queue, hooks)
        self.media = MediaServer(
            MediaServerSettings(
                host=settings.media.host, port=settings.media.port, secret=self._secret
            ),
            plans=seat,
            observer=seat,
            amd=AmdEngine(llm_check=_llm_check(settings)),
        )
        await self.media.start()

        self._dialers = self._make_dialers()
        self.controller = Controller(
            queue,
            CampaignReader(campaigns),
            self._dialers,
            media_urls=self._media_urls(),
            token_secret=self._secret.encode(),
            node_id=self._node_id,
            status_callback_urls=self._callback_urls(),
            poll_s=self._poll_s,
        )
        seat.controller = self.controller
        if self.simulated is not None:
            self.simulated.bind(self.controller, self.controller)

        backend = ControlBackend(
            queue,
            campaigns,
            on_enqueued=self.controller.dispatcher.wake,
            media_listening=lambda: self.media is not None and self.media.port > 0,
            configured_providers=set(self._dialers),
            sim_recordings_dirs=self.simulated.recordings_dirs
            if self.simulated is not None
            else None,
        )
        keys = [key.reveal() for key in settings.api.keys]
        app = create_app(
            backend,
            keys,
            routes=[actions_router(self.engine)],
            callbacks=self._callback_routes(),
        )
        self.api = ApiServer(app, settings.server.host, sock=self._api_sock)
        self._api_sock = None  # the server owns it now
        await self.api.start()

        await self.controller.start()
        self._start_workers()
        logger.info(
            "service up: API %s, media port %d, database %s",
            self.api.url,
            self.media.port,
            self.engine.dialect.name,
        )

    def _make_dialers(self) -> dict[str, Dialer]:
        """The simulated carrier always; Twilio and Telnyx when configured."""
        folders = [Path(folder) for folder in self.settings.simulated.recordings_dirs]
        self.simulated = SimulatedCarrier(
            speed=self._speed,
            log_path=self._sim_log_path,
            recordings_dirs=folders or [default_corpus_dir()],
        )
        dialers: dict[str, Dialer] = {"simulated": self.simulated}
        twilio = self.settings.carriers.twilio
        if twilio.account_sid and twilio.auth_token:
            from mediaserver.carriers.twilio import TwilioCredentials, TwilioDialer

            dialers["twilio"] = TwilioDialer(
                TwilioCredentials(twilio.account_sid, twilio.auth_token.reveal()),
                api_base=twilio.api_base or None,  # set only in tests and demos
            )
        telnyx = self.settings.carriers.telnyx
        if telnyx.api_key and telnyx.connection_id:
            from mediaserver.carriers.telnyx import TelnyxCredentials, TelnyxDialer

            dialers["telnyx"] = TelnyxDialer(
                TelnyxCredentials(
                    api_key=telnyx.api_key.reveal(),
                    connection_id=telnyx.connection_id,
                    public_key=telnyx.public_key,
                ),
                api_base=telnyx.api_base or None,  # set only in tests and demos
            )
        return dialers

    def _http_base_url(self) -> str:
        """The public URL, else the bound API address."""
        server = self.settings.server
        if server.public_url:
            return server.public_url.rstrip("/")
        if self.api is not None:
            return self.api.url
        assert self._api_sock is not None
        return f"http://{server.host}:{self._api_sock.getsockname()[1]}"

    def _media_urls(self) -> dict[str, str]:
        assert self.media is not None
        media = self.settings.media
        public = media.public_url.rstrip("/") or f"ws://{media.host}:{self.media.port}"
        return {
            # The simulated callee streams like Twilio, straight to our listener.
            "simulated": self.media.url("twilio"),
            "twilio": public + self.media.settings.twilio_path,
            "telnyx": public + self.media.settings.telnyx_path,
        }

    def _callback_urls(self) -> dict[str, str]:
        from mediaserver.api.callbacks_telnyx import WEBHOOK_PATH
        from mediaserver.api.callbacks_twilio import STATUS_PATH

        base = self._http_base_url()
        return {"twilio": base + STATUS_PATH, "telnyx": base + WEBHOOK_PATH}

    def _callback_routes(self) -> list[Any]:
        """Signed carrier callbacks, mounted only for configured carriers."""
        assert self.controller is not None
        routes: list[Any] = []
        twilio = self.settings.carriers.twilio
        if twilio.auth_token:
            from mediaserver.api.callbacks_twilio import (
                TwilioStatusCallbacks,
                twilio_status_handler,
            )

            callbacks = TwilioStatusCallbacks(
                twilio.auth_token.reveal(), self._http_base_url(), self.controller
            )
            routes.append(twilio_status_handler(callbacks))
        public_key = self.settings.carriers.telnyx.public_key
        if public_key:
            from mediaserver.api.callbacks_telnyx import (
                TelnyxWebhooks,
                telnyx_webhook_handler,
            )

            try:
                webhooks = TelnyxWebhooks(public_key, self.controller)
            except Exception as exc:
                raise ConfigError(f"carriers.telnyx.public_key: {exc}") from exc
            routes.append(telnyx_webhook_handler(webhooks))
        return routes

    def _start_workers(self) -> None:
        """Webhook delivery, the overdue call-ended sweep, post-call analysis."""
        assert self.engine is not None
        assert self._hooks is not None
        engine, hooks = self.engine, self._hooks
        secret = self.settings.webhooks.signing_secret.reveal()
        if secret:
            from mediaserver.controller.delivery import DeliveryWorker

            self._own(
                self._run_worker(DeliveryWorker(engine, secret.encode())), "webhooks"
            )
        else:
            logger.warning("webhooks.signing_secret is empty: actions are not sent")

        llm = self.settings.llm
        if llm.base_url:
            from mediaserver.controller.analysis import AnalysisWorker, Analyzer

            analyzer = Analyzer.connect(llm.base_url, llm.api_key.reveal(), llm.model)
            self._own(self._run_worker(AnalysisWorker(engine, analyzer)), "analysis")

        async def sweep() -> None:
            while True:
                await asyncio.sleep(SWEEP_EVERY_S)
                try:
                    await hooks.sweep_overdue(engine)
                except Exception:  # the store may come back; keep sweeping
                    logger.exception("call-ended sweep failed")

        self._own(sweep(), "call-ended-sweep")

    def _own(self, work: Coroutine[Any, Any, None], name: str) -> None:
        self._workers.append(asyncio.create_task(work, name=name))

    async def _run_worker(self, worker: Any) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s stopped", type(worker).__name__)
        finally:
            close = getattr(worker, "close", None)
            if close is not None:
                await close()

    async def stop(self) -> None:
        """Stop taking requests, stop dialing, end calls, close the store."""
        if self.api is not None:
            await self.api.stop()
            self.api = None
        if self._api_sock is not None:
            self._api_sock.close()
            self._api_sock = None
        if self.controller is not None:
            await self.controller.stop()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        for name, dialer in self._dialers.items():
            try:
                await dialer.close()
            except Exception:
                logger.exception("closing dialer %s failed", name)
        self._dialers.clear()
        if self.media is not None:
            await self.media.stop()
            self.media = None
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None
        logger.info("service stopped")


async def run_until_signalled(service: Service, stop: asyncio.Event) -> None:
    """Start `service`, wait for `stop`, then shut down cleanly."""
    await service.start()
    try:
        await stop.wait()
    finally:
        await service.stop()
