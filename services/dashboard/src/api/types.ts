// The backend's API bodies under the names the dashboard uses. They come from
// openapi.gen.ts, which `make api-types` generates from the backend's OpenAPI document
// (the pydantic models in backend/schemas.py); never write one by hand.
import type { components } from "./openapi.gen";

type Schemas = components["schemas"];

/** `/api/analytics`, and the data of each `analytics` event of `/api/stream`. */
export type Analytics = Schemas["Analytics"];
export type Order = Schemas["Order"];
export type Totals = Schemas["Totals"];
export type CountryBucket = Schemas["CountryRow"];
export type StatusBucket = Schemas["StatusRow"];
export type MinuteBucket = Schemas["MinuteRow"];
export type FraudAlert = Schemas["FraudAlert"];
