//! Microsoft Graph client for user photos (Exchange Online / Entra ID). Work in progress:
//! see issue 6.
