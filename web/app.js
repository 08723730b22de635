/* app.js: the dashboard's script (placeholder until the webui part writes it). */
"use strict";
