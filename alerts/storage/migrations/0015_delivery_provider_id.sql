-- Delivery receipts found by the provider's message id (issue 15): OVHcloud's callback names only its job
-- id, which the outbox keeps in provider_id ("ovh:<id>").
CREATE INDEX deliveries_provider_id ON deliveries (provider_id) WHERE provider_id <> '';
