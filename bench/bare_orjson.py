"""The framework baseline for every hook: FastAPI parsing the JSON body with orjson and
answering `{"cards": []}`, as a CDS service that decides nothing would."""

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()
_NO_CARDS = orjson.dumps({"cards": []})


@app.post("/cds-services/{service_id}")
async def no_cards(service_id: str, request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(_NO_CARDS, media_type="application/json")
