"""The API's own description: an OpenAPI 3.1 document built from the published definitions, and its
reference page.

- :mod:`formloom.api_docs.components` holds the schemas every installation shares (errors, apps,
  definitions, pipelines, approvals, automation, notifications, files);
- :mod:`formloom.api_docs.entities` turns one compiled entity into its record paths and schemas;
- :mod:`formloom.api_docs.document` puts them together for the apps a user may see;
- :mod:`formloom.api_docs.reference` turns a document into the sections of the reference page;
- :mod:`formloom.api_docs.views` serves ``/api/v1/openapi.json`` and ``/api/docs``.
"""
