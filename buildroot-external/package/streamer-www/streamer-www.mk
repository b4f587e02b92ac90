################################################################################
#
# streamer-www
#
################################################################################

# jMuxer, the player's MP4 muxer, from the npm registry: the version
# app/browser/package-lock.json pins (the sha512 in the .hash file is that
# lock file's integrity value).
STREAMER_WWW_VERSION = 2.1.1
STREAMER_WWW_SOURCE = jmuxer-$(STREAMER_WWW_VERSION).tgz
STREAMER_WWW_SITE = https://registry.npmjs.org/jmuxer/-
STREAMER_WWW_LICENSE = MIT
STREAMER_WWW_LICENSE_FILES = LICENSE

define STREAMER_WWW_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0644 $(@D)/dist/jmuxer.min.js \
		$(TARGET_DIR)/usr/share/streamer/www/vendor/jmuxer.min.js
	$(INSTALL) -D -m 0644 $(@D)/LICENSE \
		$(TARGET_DIR)/usr/share/streamer/www/vendor/jmuxer.LICENSE
endef

$(eval $(generic-package))
