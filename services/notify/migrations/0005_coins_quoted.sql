-- The coins an order will earn when paid, as the wallet quoted them on order.placed
-- (wallet.cashback_quoted), so the order email tells them even when the payment's own credit
-- has not arrived yet. The quote may come before notify's order.placed: it then makes the row
-- with `placed` false, and order.placed fills in the delivery estimate and tracking link.

ALTER TABLE orders
    ADD COLUMN coins_quoted BIGINT CHECK (coins_quoted >= 0),
    ADD COLUMN placed       BOOLEAN NOT NULL DEFAULT true;
