"""The `workbench-portal` hub service: dataset catalogue, access requests and reviews, my access."""
