-- +goose Up
-- A status stream's first state is known from the operation itself
-- (created synchronously finished, or queued), so inserting an event row
-- for every new operation only cost each request one more write. Events
-- are now recorded for changes only.
DROP TRIGGER operations_record_event ON operations;
CREATE TRIGGER operations_record_event AFTER UPDATE OF status ON operations
    FOR EACH ROW EXECUTE FUNCTION operations_record_event();

-- +goose Down
DROP TRIGGER operations_record_event ON operations;
CREATE TRIGGER operations_record_event AFTER INSERT OR UPDATE OF status ON operations
    FOR EACH ROW EXECUTE FUNCTION operations_record_event();
