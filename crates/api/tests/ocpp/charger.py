"""A charge point for Voltplan's tests, built on The Mobility House's `ocpp` package (PyPI): the
OCPP 1.6J side is their code, not ours. Driven over stdin/stdout with JSON lines:

  in:  {"op": "call", "action": "BootNotification", "payload": {...camelCase...}, "unique_id": "..."}
       {"op": "raw", "text": "[2, \"x\", ...]"}          a frame as is (for malformed input)
       {"op": "set", "key": "SupportedFeatureProfiles", "value": "Core"}   a configuration value
       {"op": "close"}
  out: {"event": "connected", "subprotocol": "ocpp1.6"}
       {"event": "refused", "status": 401}                 the handshake failed
       {"event": "result", "action": ..., "payload": {...}}    the answer to a call
       {"event": "callerror", "action": ..., "code": ..., "description": ...}
       {"event": "received", "frame": [...]}               every frame the central system sent
       {"event": "closed"}

Usage: charger.py URL CHARGE_POINT_ID PASSWORD
"""

import asyncio
import base64
import json
import re
import sys

import websockets
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call
from ocpp.v16.enums import Action

CONFIGURATION = {
    "SupportedFeatureProfiles": "Core,FirmwareManagement,SmartCharging",
    "ChargingScheduleAllowedChargingRateUnit": "Current",
    "ChargingScheduleMaxPeriods": "24",
    "MaxChargingProfilesInstalled": "8",
    "MeterValueSampleInterval": "60",
    "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import",
    "NumberOfConnectors": "1",
}


def emit(**event):
    print(json.dumps(event), flush=True)


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def snake_keys(value):
    if isinstance(value, dict):
        return {snake(k): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


class Charger(ChargePoint):
    async def route_message(self, raw_msg):
        emit(event="received", frame=json.loads(raw_msg))
        await super().route_message(raw_msg)

    @on(Action.get_configuration)
    def get_configuration(self, key=None, **_):
        keys = key or list(CONFIGURATION)
        known = [k for k in keys if k in CONFIGURATION]
        return call_result_for(
            "GetConfiguration",
            configuration_key=[
                {"key": k, "readonly": False, "value": CONFIGURATION[k]} for k in known
            ],
            unknown_key=[k for k in keys if k not in CONFIGURATION] or None,
        )

    @on(Action.change_configuration)
    def change_configuration(self, key, value, **_):
        CONFIGURATION[key] = value
        return call_result_for("ChangeConfiguration", status="Accepted")

    @on(Action.set_charging_profile)
    def set_charging_profile(self, **_):
        if "SmartCharging" not in CONFIGURATION["SupportedFeatureProfiles"]:
            return call_result_for("SetChargingProfile", status="Rejected")
        return call_result_for("SetChargingProfile", status="Accepted")

    @on(Action.clear_charging_profile)
    def clear_charging_profile(self, **_):
        return call_result_for("ClearChargingProfile", status="Accepted")

    @on(Action.remote_start_transaction)
    def remote_start_transaction(self, **_):
        return call_result_for("RemoteStartTransaction", status="Accepted")

    @on(Action.remote_stop_transaction)
    def remote_stop_transaction(self, **_):
        return call_result_for("RemoteStopTransaction", status="Accepted")

    @on(Action.trigger_message)
    def trigger_message(self, **_):
        return call_result_for("TriggerMessage", status="Accepted")

    @on(Action.change_availability)
    def change_availability(self, **_):
        return call_result_for("ChangeAvailability", status="Accepted")


def call_result_for(action, **fields):
    from ocpp.v16 import call_result

    return getattr(call_result, action)(**{k: v for k, v in fields.items() if v is not None})


async def drive(charger, connection):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        command = json.loads(line)
        op = command["op"]
        if op == "close":
            break
        if op == "set":
            CONFIGURATION[command["key"]] = command["value"]
        elif op == "raw":
            await connection.send(command["text"])
        elif op == "call":
            action = command["action"]
            payload = getattr(call, action)(**snake_keys(command.get("payload", {})))
            try:
                result = await charger.call(
                    payload, suppress=False, unique_id=command.get("unique_id")
                )
                emit(event="result", action=action, payload=json.loads(json.dumps(result.__dict__, default=str)))
            except OCPPError as error:
                emit(event="callerror", action=action, code=error.code, description=error.description)
            except asyncio.TimeoutError:
                emit(event="timeout", action=action)


async def main():
    url, identity, password = sys.argv[1:4]
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    try:
        connection = await websockets.connect(
            f"{url}/{identity}",
            subprotocols=["ocpp1.6"],
            additional_headers={"Authorization": f"Basic {token}"},
        )
    except websockets.exceptions.InvalidStatus as error:
        emit(event="refused", status=error.response.status_code)
        return
    emit(event="connected", subprotocol=connection.subprotocol)
    charger = Charger(identity, connection, response_timeout=10)
    listener = asyncio.create_task(charger.start())
    try:
        await drive(charger, connection)
    finally:
        listener.cancel()
        await connection.close()
        emit(event="closed")


if __name__ == "__main__":
    asyncio.run(main())
