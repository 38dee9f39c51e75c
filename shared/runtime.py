"""Runs one service as a process: database, broker, health endpoints, graceful shutdown.

A service is described by its `ServiceDefinition` (shared/service_definition.py): its settings
class and its `assemble`, made by `service_assembly` from the part only it has (its store,
service and handlers, its own retention and startup work). This module does the rest, the same
way for all four, in one place (`assembled`) that the tests use too: the database connection,
the audit log of staff's commands (shared/audit.py), the keyed hash, the queue inspector, the
retention policy and daily sweep, the commands every service answers about itself. `serve` adds
JSON logging, the dead-letter queues of every consumed queue, and an HTTP server with `/health` (the process answers), `/ready` (broker and database
reachable; the fingerprint of the identity key) and `/metrics` (Prometheus), and nothing else:
no AsyncAPI page, whose "try it out" would let anyone who reaches the port publish to the broker.
Uvicorn turns SIGTERM and SIGINT into a graceful stop: consumers are cancelled first, in-flight
messages finish (up to the broker's graceful timeout), then the database is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
import uvloop
from aiormq.exceptions import ChannelNotFoundEntity
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.rabbit import RabbitBroker, RabbitExchange, RabbitRouter
from pydantic import TypeAdapter

from shared import topology
from shared.audit import AUDIT_LOG, open_audit_log
from shared.commands import Actor, subscribe_commands
from shared.contracts.runtime import (
    ListAuditEntries,
    ListDeadLetters,
    PreviewRetention,
    PurgeDeadLetters,
    ReplayDeadLetters,
    ReportStatus,
    RuntimeCommand,
    ServiceStatus,
)
from shared.database import Database, StoreError, connect_database, describe_store
from shared.dead_letters import QueueInspector
from shared.errors import Refused
from shared.identity import SubjectHasher, key_fingerprint
from shared.log import configure_logging
from shared.messaging import make_broker
from shared.metrics import exposition
from shared.permissions import register_topology
from shared.retention import SWEEP_INTERVAL_SECONDS
from shared.retention_sweep import RETENTION_SWEEP, retention_sweep, service_policy
from shared.senders import login_of
from shared.service_definition import (
    Assemble,
    Assembly,
    Parts,
    ServiceDefinition,
    SettingsT,
    StartupHooks,
    Stop,
)
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0


class _Server(uvicorn.Server):
    """Uvicorn, except that a stop by signal ends the process with 0, not by the signal.

    Uvicorn re-raises the signal after its graceful shutdown, so a supervisor would see the
    process killed; a service that stopped cleanly when asked should say so.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop_signal, self.handle_exit, stop_signal, None)
        try:
            yield
        finally:
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(stop_signal)


def dead_lettering_queue_names(broker: RabbitBroker) -> list[str]:
    """The consumed queues that send what they cannot handle to the dead-letter exchange."""
    queues = [subscriber.queue for subscriber in broker.subscribers]  # type: ignore[attr-defined]
    return [
        queue.name
        for queue in queues
        if (queue.arguments or {}).get("x-dead-letter-exchange") == topology.DEAD_LETTER_EXCHANGE
    ]


async def declare_dead_letter_queues(broker: RabbitBroker) -> None:
    """`dead-letter.<queue>` for every dead-lettering queue, and the web shop's unroutable catch-all.

    Declared by every service that consumes, so no start order between services matters;
    declarations are idempotent as long as they are identical, and they come from one place.
    """
    dead_letters = await broker.declare_exchange(topology.dead_letter_exchange())
    for source in dead_lettering_queue_names(broker):
        queue = await broker.declare_queue(topology.dead_letter_queue(source))
        await queue.bind(dead_letters, routing_key=source)
    unroutable = await broker.declare_exchange(topology.webshop_unroutable_exchange())
    catch_all = await broker.declare_queue(topology.unroutable_queue())
    await catch_all.bind(unroutable)


def finds_topology(settings: ServiceSettings) -> bool:
    """Whether the service finds its exchanges, queues and bindings as `rekisteri rabbitmq
    provision` declared them, rather than declaring them itself.

    It finds them in production, and whenever it logs in as its own provisioned user
    (`<prefix><service>`), who has no right to declare or bind them (shared/permissions.py).
    Development's `guest` declares them itself, as every service always did.
    """
    if settings.environment == "production":
        return True
    return login_of(settings.rabbitmq_url) == settings.rabbitmq_user_prefix + settings.service_name


def found(exchange: RabbitExchange) -> RabbitExchange:
    """The exchange as one that exists: FastStream then declares it passively, with no right."""
    return RabbitExchange(
        exchange.name,
        type=exchange.type,
        durable=exchange.durable,
        auto_delete=exchange.auto_delete,
        arguments=exchange.arguments,
        declare=False,
    )


def declare_nothing(broker: RabbitBroker) -> None:
    """Each subscriber only finds its queue at start (a passive declare) and binds nothing; each
    publisher only finds its exchange."""
    for subscriber in broker.subscribers:
        subscriber.queue.declare = False  # type: ignore[attr-defined]
    for publisher in broker.publishers:
        if publisher.exchange is not None:  # type: ignore[attr-defined]
            publisher.exchange.declare = False  # type: ignore[attr-defined]


async def find_topology(broker: RabbitBroker) -> None:
    """Find, without declaring, every exchange of the register and every queue consumed here.

    FastStream's declarer remembers each exchange and queue by what it is, `declare` aside, so
    a later declaration of the same exchange (a publisher's) is answered from here rather than
    sent to the broker, which would refuse it. A missing one stops the start, named.
    """
    wanted: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        (f"exchange {exchange.name}", functools.partial(broker.declare_exchange, found(exchange)))
        for exchange in register_topology().exchanges
    ]
    for subscriber in broker.subscribers:
        queue = subscriber.queue  # type: ignore[attr-defined]
        wanted.append((f"queue {queue.name}", functools.partial(broker.declare_queue, queue)))
    for what, find in wanted:
        try:
            await find()
        except ChannelNotFoundEntity:
            log.error(
                "%s is missing: declare the register's topology with `rekisteri rabbitmq "
                "provision` before the services start",
                what,
                extra={"missing": what},
            )
            raise


def command_queue_names(broker: RabbitBroker) -> list[str]:
    dead_lettering = set(dead_lettering_queue_names(broker))
    queues = [subscriber.queue.name for subscriber in broker.subscribers]  # type: ignore[attr-defined]
    return [name for name in queues if name not in dead_lettering]


QUEUE_INSPECTOR = "queue_inspector"
"""Where the broker's context holds the service's one `QueueInspector` (see `queue_inspector`)."""


def queue_inspector(
    settings: ServiceSettings,
    broker: RabbitBroker,
    provided_queues: Callable[[], Awaitable[Iterable[str]]] | None = None,
) -> QueueInspector:
    """The service's view of the queues it answers for: those it consumes, their dead letters,
    and (`provided_queues`, the disclosure service's providers' queues) the dead letters of the
    queues it declares for others.

    One per service: the erasure's clean-up and the runtime commands (status, dead letters)
    then see the same queues, and take turns at browsing them.
    """
    inspector = broker.context.get(QUEUE_INSPECTOR)
    if inspector is None:
        owned_extra = (
            [topology.UNROUTABLE_QUEUE]
            if settings.service_name == topology.UNROUTABLE_QUEUE_OWNER
            else []
        )
        inspector = QueueInspector(
            settings.rabbitmq_url,
            work_queues=lambda: dead_lettering_queue_names(broker),
            command_queues=lambda: command_queue_names(broker),
            extra_dead_letter_queues=owned_extra,
        )
        broker.context.set_global(QUEUE_INSPECTOR, inspector)
    if provided_queues is not None:
        inspector.answer_also_for(provided_queues)
    assert isinstance(inspector, QueueInspector)
    return inspector


async def run_startup_hooks(hooks: StartupHooks) -> Stop:
    """Run the hooks in order; returns how to stop what they started, last started first.
    If a hook fails, what the earlier ones started is stopped before the error goes on."""
    stops: list[Stop] = []

    async def stop_all() -> None:
        for stop in reversed(stops):
            await stop()

    try:
        for hook in hooks:
            if (stop := await hook()) is not None:
                stops.append(stop)
    except BaseException:
        await stop_all()
        raise
    return stop_all


def every(
    seconds: float, work: Callable[[], Awaitable[object]], *, at_start: bool = False
) -> Callable[[], Awaitable[Stop]]:
    """A startup hook that runs `work` every `seconds` (and, `at_start`, once at once) until
    the service stops. A failure is logged and the work runs again at the next interval."""

    async def repeat() -> None:
        if not at_start:
            await asyncio.sleep(seconds)
        task = asyncio.current_task()
        while True:
            try:
                await work()
            except Exception:
                log.exception("periodic work failed; it runs again at the next interval")
            # A stop that came while the work was talking to the broker may have been swallowed
            # by the AMQP client (it closes a channel whose opening was cancelled): stop anyway.
            if task is not None and task.cancelling():
                return
            await asyncio.sleep(seconds)

    async def start() -> Stop:
        task = asyncio.create_task(repeat())

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        return stop

    return start


def runtime_router(settings: ServiceSettings, broker: RabbitBroker) -> RabbitRouter:
    """The commands every service answers about its own queues (status, dead letters), its
    audit log, and what its retention sweep would delete (`retention.preview`)."""
    inspector = queue_inspector(settings, broker)
    identity_key = key_fingerprint(settings.identity_hash_key.get_secret_value())
    router = RabbitRouter()
    subscription = topology.runtime_subscription(settings.service_name)

    @subscribe_commands(router, subscription, TypeAdapter(RuntimeCommand), settings)
    async def on_command(command: RuntimeCommand, actor: Actor) -> Any:
        """Staff's commands about the service itself: status, dead letters, audit log,
        retention preview."""
        match command:
            case ReportStatus():
                return ServiceStatus(identity_key=identity_key, queues=await inspector.status())
            case ListDeadLetters(queue=queue, limit=limit):
                return await inspector.list(queue, limit)
            case ReplayDeadLetters(ids=ids, queue=queue):
                replayed = await inspector.replay(None if ids is None else set(ids), queue)
                log.info("dead letters replayed", extra={"actor": actor, "count": len(replayed)})
                return replayed
            case PurgeDeadLetters(queue=queue):
                purged = await inspector.purge(queue)
                log.info("dead letters purged", extra={"actor": actor, "count": purged})
                return purged
            case ListAuditEntries(since=since, actor=who, limit=limit):
                return await broker.context.get(AUDIT_LOG).entries(since, who, limit)
            case PreviewRetention(as_of=as_of):
                sweep = broker.context.get(RETENTION_SWEEP)
                if sweep is None:
                    raise Refused(f"the {settings.service_name} service has no sweep")
                return await sweep.preview(as_of)

    return router


def health_routes(
    broker: RabbitBroker, database: Database, consuming: asyncio.Event, identity_key: str
) -> list[tuple[str, Any]]:
    """`identity_key` is the fingerprint of the service's key, never the key: a deployment's
    checks can compare it across the four services, which must all have the same."""

    @get(include_in_schema=False)
    async def health(scope: Any) -> AsgiResponse:
        return AsgiResponse(b'{"status":"alive"}', 200, {"content-type": "application/json"})

    @get(include_in_schema=False)
    async def ready(scope: Any) -> AsgiResponse:
        broker_ok, database_ok = await asyncio.gather(
            broker.ping(READY_TIMEOUT_SECONDS), database.ping()
        )
        # The ASGI server reports start-up complete before FastStream has declared and started
        # the subscribers: until then a message published to the web shop's exchange would not
        # yet be routed to this service's queue.
        consuming_ok = consuming.is_set()
        status = 200 if broker_ok and database_ok and consuming_ok else 503
        body = (
            f'{{"broker":{str(broker_ok).lower()},"database":{str(database_ok).lower()},'
            f'"consuming":{str(consuming_ok).lower()},"identity_key":"{identity_key}"}}'
        )
        return AsgiResponse(body.encode(), status, {"content-type": "application/json"})

    @get(include_in_schema=False)
    async def metrics(scope: Any) -> AsgiResponse:
        body, content_type = exposition()
        return AsgiResponse(body, 200, {"content-type": content_type})

    return [("/health", health), ("/ready", ready), ("/metrics", metrics)]


def service_assembly(own: Callable[[Parts[SettingsT]], Awaitable[Assembly]]) -> Assemble[SettingsT]:
    """A service's `assemble`, from the part only it has (`own`): around it, the wiring every
    service shares (its keyed hash, queue inspector and retention policy; its handlers; its
    daily retention sweep, started after its own startup hooks)."""

    async def assemble(
        settings: SettingsT, database: Database, broker: RabbitBroker
    ) -> StartupHooks:
        parts = Parts(
            settings,
            database,
            broker,
            hasher=SubjectHasher(settings.identity_hash_key.get_secret_value()),
            inspector=queue_inspector(settings, broker),
            policy=service_policy(settings.service_name),
        )
        assembly = await own(parts)
        broker.include_router(assembly.router)
        sweep = retention_sweep(
            settings,
            broker,
            database,
            parts.policy,
            assembly.retained,
            inspector=parts.inspector,
            erasure_records=assembly.erasure_records,
        )
        return [*assembly.hooks, every(SWEEP_INTERVAL_SECONDS, sweep.run, at_start=True)]

    return assemble


@dataclass
class AssembledService:
    """A service assembled on its database and broker; `start` once the broker is connected."""

    database: Database
    broker: RabbitBroker
    hooks: StartupHooks = ()
    _stop: Stop | None = None

    async def start(self) -> None:
        self._stop = await run_startup_hooks(self.hooks)

    async def stop(self) -> None:
        """Stop what `start` started, last started first; once."""
        stop, self._stop = self._stop, None
        if stop is not None:
            await stop()


@contextlib.asynccontextmanager
async def assembled(
    definition: ServiceDefinition[SettingsT], settings: SettingsT, broker: RabbitBroker
) -> AsyncIterator[AssembledService]:
    """The service as it runs, on its database and `broker`: its audit log, its own assembly,
    the runtime commands. The same for the process (`serve`) and the tests. On leaving, its
    background work is stopped, then its database closed."""
    description = describe_store(settings)
    try:
        database = await connect_database(settings)
    except StoreError as error:
        raise SystemExit(f"{settings.service_name}: {error}") from None
    log.info("data store: %s", description, extra={"store": description})
    service = AssembledService(database, broker)
    try:
        await open_audit_log(settings, database, broker)
        service.hooks = await definition.assemble(settings, database, broker)
        broker.include_router(runtime_router(settings, broker))
        yield service
    finally:
        await service.stop()
        await database.close()


async def serve(definition: ServiceDefinition[SettingsT], settings: SettingsT) -> None:
    configure_logging(settings.service_name, settings.log_level)
    broker = make_broker(settings)
    async with assembled(definition, settings, broker) as service:
        provisioned = finds_topology(settings)
        if provisioned:
            declare_nothing(broker)
        # Modules and models loaded so far live as long as the process: out of the cyclic
        # collector's way, they are never scanned again.
        gc.freeze()

        async def declare_before_consuming() -> None:
            # Connected but not consuming yet: a message dead-lettered in the first moments
            # must find its dead-letter queue, and a provider's queue must exist before any
            # disclosure is routed to it.
            await broker.connect()
            if provisioned:
                await find_topology(broker)
            else:
                await declare_dead_letter_queues(broker)
            await service.start()

        consuming = asyncio.Event()

        async def mark_consuming() -> None:
            consuming.set()

        app = AsgiFastStream(
            broker,
            asgi_routes=health_routes(
                broker,
                service.database,
                consuming,
                key_fingerprint(settings.identity_hash_key.get_secret_value()),
            ),
            on_startup=[declare_before_consuming],
            after_startup=[mark_consuming],
            on_shutdown=[service.stop],
            logger=logging.getLogger(f"{settings.service_name}.app"),
        )
        server = _Server(
            uvicorn.Config(
                app,
                host=settings.health_host,
                port=settings.health_port,
                lifespan="on",
                log_config=None,
                access_log=False,
            )
        )
        log.info(
            "health endpoints on port %d",
            settings.health_port,
            extra={"port": settings.health_port},
        )
        await server.serve()
        if not server.started:
            raise SystemExit(f"{settings.service_name} could not start; see the log above")


# Each message allocates a few thousand short-lived objects, nearly all freed by reference
# counting; at CPython's default (700) the collector ran several times per message, scanning
# the young and, more and more often, the long-lived ones (12% of a consent service's CPU).
GC_THRESHOLDS = (10_000, 10, 10)


def run(definition: ServiceDefinition[Any]) -> None:
    """Entry point of `python -m services.<name>`: the service, with settings from the
    environment."""
    gc.set_threshold(*GC_THRESHOLDS)
    # libuv's event loop: the services spend much of their time in socket I/O and callbacks.
    uvloop.run(serve(definition, definition.settings_class()))
