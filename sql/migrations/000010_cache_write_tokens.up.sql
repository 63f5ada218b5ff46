-- Prompt tokens written to a provider's prompt cache (Anthropic's
-- cache_creation_input_tokens): priced apart, so kept apart. Like
-- cached_tokens they are part of prompt_tokens.
ALTER TABLE generations ADD COLUMN cache_write_tokens integer NOT NULL DEFAULT 0;
