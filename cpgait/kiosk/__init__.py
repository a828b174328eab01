"""The clinic kiosk (`cpgait kiosk`): a local web app over the live loop, with patients, sessions kept in SQLite,
results, history, reports and an admin view. Needs the `kiosk` extra; `cpgait.runtime` never imports it."""
