/*
 * url_login.h - the one libiscsi login of the e2e C clients (e2e_client,
 * xcopy_client): a context for INITIATOR logged in to the target an
 * iscsi:// URL names (normal session, no header digest); the URL's LUN in
 * *lun when lun is not NULL. NULL, with the reason on stderr, if not.
 */
#ifndef SCSTU_TESTS_E2E_URL_LOGIN_H
#define SCSTU_TESTS_E2E_URL_LOGIN_H

#include <iscsi/iscsi.h>
#include <stdio.h>

static struct iscsi_context* url_login(const char* url_text, const char* initiator, int* lun) {
  struct iscsi_context* iscsi = iscsi_create_context(initiator);
  struct iscsi_url* url = iscsi ? iscsi_parse_full_url(iscsi, url_text) : NULL;
  if (!url) {
    fprintf(stderr, "bad URL %s: %s\n", url_text, iscsi ? iscsi_get_error(iscsi) : "no context");
    if (iscsi) iscsi_destroy_context(iscsi);
    return NULL;
  }
  iscsi_set_targetname(iscsi, url->target);
  iscsi_set_session_type(iscsi, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(iscsi, ISCSI_HEADER_DIGEST_NONE);
  if (iscsi_full_connect_sync(iscsi, url->portal, url->lun) != 0) {
    fprintf(stderr, "login to %s: %s\n", url_text, iscsi_get_error(iscsi));
    iscsi_destroy_url(url);
    iscsi_destroy_context(iscsi);
    return NULL;
  }
  if (lun) *lun = url->lun;
  iscsi_destroy_url(url);
  return iscsi;
}

#endif
